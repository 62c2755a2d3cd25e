package demo

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/backends"
	"github.com/offtrail/offtrail/detector/baseline"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
	"github.com/offtrail/offtrail/internal/geoip"
	"github.com/offtrail/offtrail/internal/synth"
	"github.com/offtrail/offtrail/internal/testenv"
)

// TestBaselinesEquivalentToRawHistory replays the whole pack over an
// organisation three ways on each backend — aggregating the raw history
// every tick, through baseline days counted as the replay goes, and
// through a fresh cache that reads the days the previous replay stored
// (a restart, or a second replica) — and requires the same signals and
// incidents, byte for byte.
func TestBaselinesEquivalentToRawHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("replays the pack three times per backend")
	}
	open := map[string]func(t *testing.T) store.Backend{
		"embedded": func(*testing.T) store.Backend { return embedded.NewMemory() },
	}
	urls := testenv.Engines(t)
	for name, url := range urls {
		open[name] = func(t *testing.T) store.Backend {
			b, err := backends.Open(t.Context(), backends.Options{URLs: []string{url}}, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	var geo *geoip.DB
	if path := os.Getenv("OFFTRAIL_GEOIP_DB"); path != "" {
		db, err := geoip.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		geo = db
	}
	for name, openBackend := range open {
		t.Run(name, func(t *testing.T) {
			b := openBackend(t)
			defer b.Close()
			id := fmt.Sprint(time.Now().UnixNano())
			cfg := Config{
				Synth:  synth.Config{Identities: 24, Days: 8, Seed: 3, End: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)},
				Replay: 10 * time.Hour, // 40 ticks of every rule; the edges move with each
				Log:    zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Store: b,
				Index: "logs-aws.cloudtrail-bltest-" + id, StateIndex: "offtrail-state-bltest-" + id,
			}
			if geo != nil {
				cfg.Geo = geo
			}
			if url, ok := urls[name]; ok {
				t.Cleanup(func() { deleteIndices(url, cfg.Index, cfg.StateIndex) })
			}
			raw := cfg
			raw.RawHistory = true
			want := replayed(t, raw)
			if len(want.sigs) == 0 {
				t.Fatal("the raw replay raised no signal: the comparison proves nothing")
			}
			for _, pass := range []string{"days counted during the replay", "days read back from the state index"} {
				got := replayed(t, cfg)
				if !bytes.Equal(got.sigs, want.sigs) || !bytes.Equal(got.incs, want.incs) {
					t.Fatalf("%s: signals or incidents differ from the raw history's\n got %d bytes of signals, %d of incidents\nwant %d and %d",
						pass, len(got.sigs), len(got.incs), len(want.sigs), len(want.incs))
				}
				st := got.stats
				t.Logf("%s: %d signals; %+v", pass, got.n, st)
				switch {
				case st.Split == 0:
					t.Fatalf("%s: no history count was answered from days: %+v", pass, st)
				case pass == "days read back from the state index" && (st.DaysState == 0 || st.DaysBuilt != 0):
					t.Fatalf("%s: %+v, want every day read from the state index", pass, st)
				}
			}
		})
	}
}

type replayOutput struct {
	sigs, incs []byte
	n          int
	stats      baseline.Stats
}

func replayed(t *testing.T, cfg Config) replayOutput {
	t.Helper()
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out replayOutput
	out.n = len(rep.Signals)
	sorted := append([]*detector.Signal(nil), rep.Signals...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	for _, s := range sorted {
		b, err := s.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		out.sigs = append(append(out.sigs, b...), '\n')
	}
	for _, inc := range rep.Incidents {
		b, err := inc.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		out.incs = append(append(out.incs, b...), '\n')
	}
	if c := rep.Baselines; c != nil {
		out.stats = c.Stats()
	}
	return out
}

// deleteIndices drops what a test made on a shared engine.
func deleteIndices(base string, names ...string) {
	for _, n := range names {
		req, err := http.NewRequest(http.MethodDelete, base+"/"+n+"?ignore_unavailable=true", nil)
		if err != nil {
			continue
		}
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}
}
