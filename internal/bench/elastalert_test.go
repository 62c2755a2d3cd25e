package bench

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

func TestReadPhase(t *testing.T) {
	out := "INFO something else\n{\"phase\": \"loaded\", \"cpu\": 1.25, \"rules\": 1}\nnot json\n{\"phase\": \"done\", \"cpu\": 1.5, \"matches\": 7}\n"
	sc := bufio.NewScanner(strings.NewReader(out))
	l, err := readPhase(sc, "loaded")
	if err != nil || l.cpu() != 1250*time.Millisecond || l.Rules != 1 {
		t.Fatalf("loaded: %+v, %v", l, err)
	}
	l, err = readPhase(sc, "done")
	if err != nil || l.Matches != 7 || l.cpu() != 1500*time.Millisecond {
		t.Fatalf("done: %+v, %v", l, err)
	}
	if _, err := readPhase(sc, "done"); err == nil || !strings.Contains(err.Error(), "exited before") {
		t.Fatalf("after the end: %v", err)
	}
}

// TestElastAlertCosts: the span in 15-minute ticks divides both lines;
// the replay line leaves out the start-up, the other spreads it.
func TestElastAlertCosts(t *testing.T) {
	s := time.Second
	run := &ElastAlertRun{Span: 2 * time.Hour, Matches: 10, Client: 4 * s, PeakRSS: 70 << 20,
		Startup: Used{Client: 3 * s, Engine: 2 * s, HasEngine: true},
		Replay:  Used{Client: 800 * time.Millisecond, Engine: 4 * s, HasEngine: true, Wall: s}}
	cs := run.Costs("opensearch", 1000)
	if len(cs) != 2 || run.Ticks() != 8 {
		t.Fatalf("%d costs, %d ticks", len(cs), run.Ticks())
	}
	if c := cs[0]; c.Client != 100*time.Millisecond || c.Engine != 500*time.Millisecond || c.Ticks != 8 || c.Tool != ToolElastAlert {
		t.Fatalf("replay %+v", c)
	}
	if c := cs[1]; c.Client != 500*time.Millisecond || c.Engine != 750*time.Millisecond || c.PeakRSS != 70<<20 {
		t.Fatalf("with start-up %+v", c)
	}
}

// TestElastAlertSegmentNames: each replay is named by its buffer_time,
// and the note counts its queries.
func TestElastAlertSegmentNames(t *testing.T) {
	for _, tc := range []struct {
		seg            time.Duration
		scope, queries string
	}{
		{0, "new_term (ARN, action), 2h segments, replay", "4 queries"},
		{2 * time.Hour, "new_term (ARN, action), 2h segments, replay", "4 queries"},
		{15 * time.Minute, "new_term (ARN, action), 15m segments, replay", "32 queries"},
		{90 * time.Minute, "new_term (ARN, action), 90m segments, replay", "6 queries"},
	} {
		run := &ElastAlertRun{Span: 8 * time.Hour, Segment: tc.seg}
		c := run.Costs("elasticsearch", 1)[0]
		if c.Scope != tc.scope || !strings.Contains(c.Note, tc.queries) {
			t.Errorf("segment %s: scope %q, note %q", tc.seg, c.Scope, c.Note)
		}
	}
}
