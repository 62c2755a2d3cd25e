package detector

import (
	"testing"

	"github.com/offtrail/offtrail/detector/store"
)

func TestKeyJoinerIsKeyString(t *testing.T) {
	var j keyJoiner
	for _, parts := range [][]string{nil, {}, {""}, {"a"}, {"a", "b"}, {"a", ""}, {"", "b", "c"}, {"a\x1fb", "c"}, {"a", "b"}} {
		if got, want := j.join(parts), store.KeyString(parts); got != want {
			t.Errorf("join(%q) = %q, want %q", parts, got, want)
		}
	}
	// The buffer is reused: an earlier key must not change under a later one.
	first := j.join([]string{"x", "y"})
	j.join([]string{"zz", "ww"})
	if first != "x\x1fy" {
		t.Errorf("an earlier key changed to %q", first)
	}
	if n := testing.AllocsPerRun(100, func() { j.join([]string{"a", "b"}) }); n != 0 {
		t.Errorf("joining a key seen before allocates %v times", n)
	}
}
