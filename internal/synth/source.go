package synth

import (
	"strings"
	"sync"
)

// EventSource returns the eventSource CloudTrail records for an API call
// (StopLogging → cloudtrail.amazonaws.com) and whether the service is
// global (logged in us-east-1 whatever the caller's region), from the
// synthetic organisation's catalog and the Stratus Red Team recordings.
// Rule tests use it to default the service of a compact event.
func EventSource(action string) (source string, global bool, ok bool) {
	s, ok := eventSources()[action]
	return s.source, s.global, ok
}

type sourceOf struct {
	source string
	global bool
}

var eventSources = sync.OnceValue(func() map[string]sourceOf {
	out := map[string]sourceOf{}
	for _, a := range catalog {
		out[a.name] = sourceOf{a.svc.source, a.svc.global}
	}
	// The recordings name the attack calls the catalog lacks. A broken
	// embedded file only leaves them out: the catalog still answers.
	techniques, _ := loadStratus()
	for _, t := range techniques {
		for _, rec := range t.records {
			name, src := str(rec, "eventName"), str(rec, "eventSource")
			if _, known := out[name]; known || name == "" || src == "" {
				continue
			}
			svc := services[strings.TrimSuffix(src, ".amazonaws.com")]
			out[name] = sourceOf{src, svc != nil && svc.global || isGlobalSource(src)}
		}
	}
	return out
})

// isGlobalSource: the IAM-like services whose calls CloudTrail logs in
// us-east-1.
func isGlobalSource(src string) bool {
	switch src {
	case "iam.amazonaws.com", "sts.amazonaws.com", "organizations.amazonaws.com", "signin.amazonaws.com", "route53.amazonaws.com":
		return true
	}
	return false
}
