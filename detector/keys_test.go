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

// entityRun tells where a new entity starts, also when the backend passes
// the same slice with new contents each time.
func TestEntityRun(t *testing.T) {
	keys := [][]string{{"a", "x", "1"}, {"a", "x", "2"}, {"a", "y", "1"}, {"b", "y", "1"}, {"b", "y", "3"}, {"a", "x", "1"}}
	want := []bool{true, false, true, true, false, true}
	r := entityRun{n: 2}
	reused := make([]string, 3)
	for i, k := range keys {
		copy(reused, k)
		if got := r.next(reused); got != want[i] {
			t.Errorf("key %d %v: new entity %v, want %v", i, k, got, want[i])
		}
	}
	none := entityRun{}
	for i := range 2 {
		if !none.next([]string{"a"}) {
			t.Errorf("key %d: with no entity parts every key starts anew", i)
		}
	}
}
