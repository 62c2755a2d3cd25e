package store

import (
	"slices"
	"testing"
)

func TestKeyStringRoundTrip(t *testing.T) {
	for _, key := range [][]string{
		{"arn:aws:iam::1:user/a", "GetObject"},
		{""},
		{"", ""},
		{"a\x1fb", "c"},
		{"a", "b\x1fc"},
		{"\x1e", "\x1f"},
		{"tail\x1e"},
		{"x\x1e\x1fy", "", "z"},
	} {
		s := KeyString(key)
		if got := SplitKey(s); !slices.Equal(got, key) {
			t.Errorf("SplitKey(KeyString(%q)) = %q", key, got)
		}
		if b := AppendKey([]byte("pre"), key); string(b[3:]) != s {
			t.Errorf("AppendKey(%q) = %q, KeyString %q", key, b[3:], s)
		}
	}
	// A value holding the separator never joins like two values.
	if KeyString([]string{"a\x1fb", "c"}) == KeyString([]string{"a", "b\x1fc"}) {
		t.Error("two keys join alike")
	}
}

// FuzzKeyString: any two-part key survives the round trip, and two
// different keys never join to the same string.
func FuzzKeyString(f *testing.F) {
	f.Add("a\x1fb", "c", "a", "b\x1fc")
	f.Add("\x1e", "", "", "\x1e")
	f.Fuzz(func(t *testing.T, a, b, c, d string) {
		k1, k2 := []string{a, b}, []string{c, d}
		if got := SplitKey(KeyString(k1)); !slices.Equal(got, k1) {
			t.Fatalf("round trip of %q: %q", k1, got)
		}
		if !slices.Equal(k1, k2) && KeyString(k1) == KeyString(k2) {
			t.Fatalf("%q and %q join alike", k1, k2)
		}
	})
}
