package synth

// Records are rendered by hand, in the key order CloudTrail itself uses:
// encoding/json through maps would be several times slower and sort the
// keys.

const rfc3339Sec = "2006-01-02T15:04:05Z"

// appendTime writes t as CloudTrail does (RFC 3339, UTC, seconds). It is
// on the hot path, hence no time.Format.
func appendTime(b []byte, t int64) []byte {
	days := t / 86400
	sec := t - days*86400
	if sec < 0 {
		sec += 86400
		days--
	}
	y, m, d := civil(days)
	b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10), 'T')
	h, mi, s := sec/3600, sec/60%60, sec%60
	return append(b, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':', byte('0'+s/10), byte('0'+s%10), 'Z')
}

// civil converts days since 1970-01-01 to a date (Howard Hinnant's
// algorithm).
func civil(z int64) (y, m, d int64) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// appendString writes s as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendField(b []byte, key, val string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, val)
}

// renderIdentity renders userIdentity.
func renderIdentity(id *identity, acct int, key string, created int64, mfa bool) []byte {
	a := accounts[acct].ID
	b := make([]byte, 0, 512)
	switch {
	case id.auto != nil && id.auto.kind == kindService:
		b = append(b, `{"type":"AWSService","invokedBy":`...)
		b = appendString(b, id.auto.invoked)
		return append(b, '}')
	case id.iamUser:
		b = append(b, `{"type":"IAMUser","principalId":`...)
		b = appendString(b, id.aida)
		b = appendField(b, "arn", id.arn(acct))
		b = appendField(b, "accountId", accounts[id.homeAcct].ID)
		b = appendField(b, "accessKeyId", key)
		b = appendField(b, "userName", id.name)
		if key != id.akia {
			b = append(b, `,"sessionContext":{"attributes":{"creationDate":"`...)
			b = appendTime(b, created)
			b = append(b, `","mfaAuthenticated":"`...)
			if mfa {
				b = append(b, "true"...)
			} else {
				b = append(b, "false"...)
			}
			b = append(b, `"}}`...)
		}
		return append(b, '}')
	}
	roleName, roleARN, sessName := id.name, "arn:aws:iam::"+a+":role/"+id.name, id.session
	if id.auto == nil {
		roleName = id.ssoRole[acct]
		roleARN = "arn:aws:iam::" + a + ":role/aws-reserved/sso.amazonaws.com/" + roleName
		sessName = id.name
	} else if id.auto.kind == kindLinked {
		roleARN = "arn:aws:iam::" + a + ":role/aws-service-role/autoscaling.amazonaws.com/" + roleName
	}
	b = append(b, `{"type":"AssumedRole","principalId":`...)
	b = appendString(b, id.roleIDs[acct]+":"+sessName)
	b = appendField(b, "arn", id.arn(acct))
	b = appendField(b, "accountId", a)
	b = appendField(b, "accessKeyId", key)
	b = append(b, `,"sessionContext":{"sessionIssuer":{"type":"Role","principalId":`...)
	b = appendString(b, id.roleIDs[acct])
	b = appendField(b, "arn", roleARN)
	b = appendField(b, "accountId", a)
	b = appendField(b, "userName", roleName)
	b = append(b, `},"attributes":{"creationDate":"`...)
	b = appendTime(b, created)
	b = append(b, `","mfaAuthenticated":"false"}}`...)
	if id.auto != nil && id.auto.invoked != "" {
		b = appendField(b, "invokedBy", id.auto.invoked)
	}
	return append(b, '}')
}

// renderCtx holds what templates may mention besides resources.
type renderCtx struct {
	acct, region, arn, now, ago string
}

func (g *gen) appendTemplate(b []byte, tpl []frag, e *event, ctx *renderCtx) []byte {
	res := g.res[e.acct]
	for i, f := range tpl {
		if f.v == "" {
			b = append(b, f.lit...)
			continue
		}
		b = append(b, res.value(f.v, mix64(e.pick+uint64(i)*0x9E3779B97F4A7C15), ctx)...)
	}
	return b
}

func (g *gen) appendTemplateString(b []byte, s string, e *event, ctx *renderCtx) []byte {
	return g.appendTemplate(b, parseTemplate(s), e, ctx)
}

// appendEvent renders one record.
func (g *gen) appendEvent(b []byte, e *event) []byte {
	if e.raw != nil {
		return append(b, e.raw...)
	}
	a := e.act
	acct := accounts[e.acct].ID
	region := regions[e.region]
	ctx := renderCtx{acct: acct, region: region, arn: e.who.arn}
	if a.params != nil {
		ctx.now = string(appendTime(nil, e.t))
		ctx.ago = string(appendTime(nil, e.t-3*3600))
	}
	b = append(b, `{"eventVersion":"1.09","userIdentity":`...)
	b = append(b, e.who.ui...)
	b = append(b, `,"eventTime":"`...)
	b = appendTime(b, e.t)
	b = append(b, '"')
	b = appendField(b, "eventSource", a.svc.source)
	b = appendField(b, "eventName", a.name)
	b = appendField(b, "awsRegion", region)
	b = appendField(b, "sourceIPAddress", e.ip)
	b = append(b, `,"userAgent":"`...)
	b = append(b, e.ua...)
	if e.flags&flagCLI != 0 {
		b = append(b, a.cliName...)
	}
	b = append(b, '"')
	if a.console {
		return g.appendLogin(b, e, acct)
	}
	if e.err != nil {
		b = appendField(b, "errorCode", e.err.code)
		b = append(b, `,"errorMessage":"`...)
		b = g.appendTemplateString(b, e.err.msg, e, &ctx)
		b = append(b, '"')
	}
	b = append(b, `,"requestParameters":`...)
	switch {
	case e.params != nil:
		b = append(b, e.params...)
	case a.params != nil:
		b = g.appendTemplate(b, a.params, e, &ctx)
	default:
		b = append(b, "null"...)
	}
	b = append(b, `,"responseElements":`...)
	if e.resp != nil && e.err == nil {
		b = append(b, e.resp...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"requestID":"`...)
	b = makeUUID(mix64(e.pick^0x5bd1e995), mix64(e.pick+7)).appendTo(b)
	b = append(b, `","eventID":"`...)
	b = e.id.appendTo(b)
	b = append(b, `","readOnly":`...)
	if a.readOnly {
		b = append(b, "true"...)
	} else {
		b = append(b, "false"...)
	}
	if a.data {
		b = append(b, `,"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"`...)
		b = append(b, acct...)
		b = append(b, `","eventCategory":"Data"`...)
	} else {
		b = append(b, `,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"`...)
		b = append(b, acct...)
		b = append(b, `","eventCategory":"Management"`...)
	}
	if e.ip != "" && e.ip[0] >= '0' && e.ip[0] <= '9' {
		b = append(b, `,"tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"`...)
		if a.svc.global {
			b = append(b, a.svc.key...)
			b = append(b, ".amazonaws.com"...)
		} else {
			b = append(b, a.svc.key...)
			b = append(b, '.')
			b = append(b, region...)
			b = append(b, ".amazonaws.com"...)
		}
		b = append(b, `"}`...)
	}
	return append(b, '}')
}

func (g *gen) appendLogin(b []byte, e *event, acct string) []byte {
	fail := e.flags&flagLoginFail != 0
	if fail {
		b = append(b, `,"errorMessage":"Failed authentication"`...)
	}
	b = append(b, `,"requestParameters":null,"responseElements":{"ConsoleLogin":"`...)
	if fail {
		b = append(b, "Failure"...)
	} else {
		b = append(b, "Success"...)
	}
	b = append(b, `"},"additionalEventData":{"LoginTo":"https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true","MobileVersion":"No","MFAUsed":"`...)
	if e.flags&flagMFA != 0 {
		b = append(b, "Yes"...)
	} else {
		b = append(b, "No"...)
	}
	b = append(b, `"},"eventID":"`...)
	b = e.id.appendTo(b)
	b = append(b, `","readOnly":false,"eventType":"AwsConsoleSignIn","managementEvent":true,"recipientAccountId":"`...)
	b = append(b, acct...)
	b = append(b, `","eventCategory":"Management","tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"signin.aws.amazon.com"}}`...)
	return b
}
