package detector

import (
	"fmt"
	"testing"
)

func TestMachineRole(t *testing.T) {
	for arn, want := range map[string]bool{
		"arn:aws:sts::1:assumed-role/nightly-backup/backup-job":                   true,
		"arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_0123/alice@example.com": false,
		"arn:aws:sts::1:assumed-role/okta-engineers/bob@example.com":              false,
		"arn:aws:iam::1:user/ci-deploy":                                           false,
		"ci-deploy":                                                               false,
	} {
		if got := machineRole(arn); got != want {
			t.Errorf("machineRole(%s) = %v, want %v", arn, got, want)
		}
	}
}

// TestNearestPeers: peers are the most similar value sets; an entity with
// no history resembles nobody and gets the whole partition.
func TestNearestPeers(t *testing.T) {
	p := peerSets{}
	for i := range 15 {
		e := fmt.Sprintf("dev%02d", i)
		for _, v := range []string{"GetObject", "PutObject", "DescribeInstances"} {
			p.add("acct", e, v)
		}
		if i < 3 {
			p.add("acct", e, "CreateUser") // three administrators
			p.add("acct", e, "AttachUserPolicy")
		}
	}
	for _, v := range []string{"GetObject", "PutObject", "DescribeInstances"} {
		p.add("acct", "me", v)
	}
	got := p.peerStats("acct", "me", "CreateUser", nil, func(string) string { return "acct" })
	if !got.Nearest || got.Total != nearestPeers || got.WithValue != 0 {
		t.Errorf("a developer's peers: %+v, want 10 nearest, none an administrator", got)
	}
	all := p.peerStats("acct", "newcomer", "CreateUser", nil, func(string) string { return "acct" })
	if all.Nearest || all.Total != 16 || all.WithValue != 3 {
		t.Errorf("no history: %+v, want the whole partition (16, 3 with the value)", all)
	}
}
