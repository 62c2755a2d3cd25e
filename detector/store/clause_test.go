package store

import "testing"

func TestCondMatchValue(t *testing.T) {
	cases := []struct {
		cond Cond
		v    string
		want bool
	}{
		{Cond{Op: OpTerms, Values: []string{"a", "b"}}, "b", true},
		{Cond{Op: OpTerms, Values: []string{"a"}}, "A", false},
		{Cond{Op: OpCIDR, Values: []string{"10.1.16.0/20"}}, "10.1.31.255", true},
		{Cond{Op: OpCIDR, Values: []string{"10.1.16.0/20"}}, "10.1.32.0", false},
		{Cond{Op: OpCIDR, Values: []string{"10.1.2.3"}}, "10.1.2.3", true},
		{Cond{Op: OpCIDR, Values: []string{"10.0.0.0/8"}}, "::ffff:10.1.2.3", true},
		{Cond{Op: OpCIDR, Values: []string{"2001:db8::/32"}}, "2001:DB8:0:1::5", true},
		{Cond{Op: OpCIDR, Values: []string{"10.0.0.0/8"}}, "ec2.amazonaws.com", false},
		{Cond{Op: OpWildcard, Values: []string{"aws-cli/*"}}, "aws-cli/2.15.0 Python/3.11", true},
		{Cond{Op: OpWildcard, Values: []string{"aws-cli/?.1*"}}, "aws-cli/2.15.0", true},
		{Cond{Op: OpWildcard, Values: []string{"*Python*"}}, "Boto3/1.34 Python/3.12", true},
		{Cond{Op: OpWildcard, Values: []string{"a*b*c"}}, "a-b-b-d", false},
		{Cond{Op: OpWildcard, Values: []string{"*"}}, "", true},
		{Cond{Op: OpWildcard, Values: []string{"?"}}, "", false},
		{Cond{Op: OpWildcard, Values: []string{"a*"}}, "A", false},
	}
	for _, c := range cases {
		if got := c.cond.MatchValue(c.v); got != c.want {
			t.Errorf("%s %v on %q = %v, want %v", c.cond.Op, c.cond.Values, c.v, got, c.want)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3/8": "10.0.0.0/8", "10.1.2.3": "10.1.2.3/32", "2001:db8::1": "2001:db8::1/128", " 192.168.0.0/16 ": "192.168.0.0/16",
	} {
		p, err := ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "10.0.0", "host", "fe80::1%eth0", "::ffff:10.0.0.0/104"} {
		if _, err := ParsePrefix(bad); err == nil {
			t.Errorf("ParsePrefix(%q): no error", bad)
		}
	}
}
