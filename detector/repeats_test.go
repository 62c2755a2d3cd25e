package detector_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/storetest"
)

// TestRepeatsAreNotBuiltAgain: windows of 2 h every 15 min see each new
// call in eight windows. Told what each window wrote (Written), the
// detector builds each signal once and reports the other windows' copies
// as repeats: every window yields the signals it would have yielded, less
// those an earlier written window already holds, by id. A window whose
// write is not confirmed (a failed write, retried) leaves its signals to
// be built again.
func TestRepeatsAreNotBuiltAgain(t *testing.T) {
	end := time.Date(2024, 6, 10, 12, 0, 0, 0, time.UTC)
	var evs []ev
	add := func(who, action string, at time.Time) {
		evs = append(evs, ev{at: at, who: userARN(who), action: action, service: "iam.amazonaws.com", region: "eu-west-1", city: "Paris", country: "FR"})
	}
	for d := 20; d >= 1; d-- {
		for k, a := range []string{"ListUsers", "GetUser", "ListRoles"} {
			add("victim", a, end.Add(-time.Duration(d)*24*time.Hour+time.Duration(k)*time.Minute))
		}
	}
	for k, a := range []string{"CreateUser", "AttachUserPolicy", "CreateAccessKey", "ListUsers"} {
		add("victim", a, end.Add(time.Duration(k)*35*time.Minute+5*time.Minute))
		// The same pair again, in the next quarter hour: the window that
		// lets the first call go has this one first, a new signal.
		add("victim", a, end.Add(time.Duration(k)*35*time.Minute+25*time.Minute))
	}
	index := storetest.IndexPrefix + "repeats"
	b := memStoreWith(t, index, "repeats", evs)
	r, _ := packFrom(t, fmt.Sprintf(freshRule, index, "")).Get("fresh-rare-method") // the plain rare rule
	told, untold := detector.New(b, zerolog.Nop()), detector.New(b, zerolog.Nop())

	seen := map[string]bool{} // ids the untold detector produced in earlier windows
	built, repeats := 0, 0
	for k := 1; k <= 16; k++ {
		w := store.Window{From: end.Add(time.Duration(k)*15*time.Minute - 2*time.Hour), To: end.Add(time.Duration(k) * 15 * time.Minute)}
		all, err := untold.Evaluate(t.Context(), r, w, "test")
		if err != nil {
			t.Fatal(err)
		}
		got, err := told.Evaluate(t.Context(), r, w, "test")
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, s := range all.Signals {
			if !seen[s.ID] {
				want = append(want, s.ID)
			}
			seen[s.ID] = true
		}
		if ids := signalIDs(got.Signals); !slices.Equal(ids, sortedIDs(want)) {
			t.Fatalf("window %s: built %v, want %v (the window's signals less those written before)", w, ids, sortedIDs(want))
		}
		if got.Repeats != len(all.Signals)-len(want) {
			t.Fatalf("window %s: %d repeats, want %d", w, got.Repeats, len(all.Signals)-len(want))
		}
		built, repeats = built+len(got.Signals), repeats+got.Repeats
		if k == 6 {
			// Window 6's write failed: nothing it built is remembered, so
			// its retry builds the same signals again.
			again, err := told.Evaluate(t.Context(), r, w, "test")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(signalIDs(again.Signals), signalIDs(got.Signals)) {
				t.Fatalf("retried window %s built %v, want %v again", w, signalIDs(again.Signals), signalIDs(got.Signals))
			}
		}
		told.Written(r, w, got.Signals)
	}
	// The rule reloaded (or edited: its filter may choose other first
	// events): what the old definition wrote is not the new one's.
	last := store.Window{From: end.Add(16*15*time.Minute - 2*time.Hour), To: end.Add(16 * 15 * time.Minute)} // written last
	reloaded, _ := packFrom(t, fmt.Sprintf(freshRule, index, "")).Get("fresh-rare-method")
	again, err := told.Evaluate(t.Context(), reloaded, last, "test")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := untold.Evaluate(t.Context(), reloaded, last, "test")
	if again.Repeats != 0 || len(want.Signals) == 0 || !slices.Equal(signalIDs(again.Signals), signalIDs(want.Signals)) {
		t.Fatalf("the reloaded rule skipped %d repeats, built %v; want none skipped, %v", again.Repeats, signalIDs(again.Signals), signalIDs(want.Signals))
	}
	if built != 8 || repeats < 20 {
		t.Fatalf("built %d signals and skipped %d repeats, want each of the 4 pairs built once per first call (8) and the rest skipped", built, repeats)
	}
}

func signalIDs(sigs []*detector.Signal) []string {
	ids := make([]string, len(sigs))
	for i, s := range sigs {
		ids[i] = s.ID
	}
	return sortedIDs(ids)
}

func sortedIDs(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
