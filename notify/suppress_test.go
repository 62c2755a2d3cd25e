package notify

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/detector/store/embedded"
)

// Suppression state in the state store outlives a dispatcher: a restart
// (a new dispatcher on the same state files) and a second replica (another
// dispatcher on the same store) send nothing more for the same incident,
// and the next message after the window carries the count of both.
func TestSuppressionSharedThroughStateStore(t *testing.T) {
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	clk := &clock{now: t0}
	newDisp := func() *Dispatcher {
		d, err := NewDispatcher(map[string]Channel{"c": {Notifier: r}}, Options{Logger: zerolog.Nop(), Now: clk.Now, Sleep: clk.Sleep})
		if err != nil {
			t.Fatal(err)
		}
		d.Start(st, "offtrail-state-test")
		t.Cleanup(func() { _ = d.Close(context.Background()) })
		return d
	}
	first, restarted, replica := newDisp(), newDisp(), newDisp()
	for i, d := range []*Dispatcher{first, restarted, replica, replica} {
		if err := dispatch(t, d, []string{"c"}, signal("r1", "alice", "x", i)); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Hour)
	if err := dispatch(t, restarted, []string{"c"}, signal("r1", "alice", "x", 9)); err != nil {
		t.Fatal(err)
	}
	if got := labels(r.sent); got != "r1/alice/0/0 r1/alice/9/3" {
		t.Errorf("sent %s, want the first and then one with the 3 held back", got)
	}
}

// A message that failed re-opens its group, keeping the held-back count.
func TestUnclaimKeepsCount(t *testing.T) {
	st := newMemState()
	s := newSuppressor(st, "")
	m, _ := FromSignal(signal("r1", "alice", "x", 0), nil)
	cl, err := s.claim(t.Context(), "c", time.Hour, m, t0)
	if err != nil || !cl.send {
		t.Fatalf("first claim %+v %v", cl, err)
	}
	m2, _ := FromSignal(signal("r1", "alice", "x", 1), nil)
	if cl2, err := s.claim(t.Context(), "c", time.Hour, m2, t0.Add(time.Minute)); err != nil || cl2.send {
		t.Fatalf("second claim %+v %v", cl2, err)
	}
	later := t0.Add(2 * time.Hour)
	m3, _ := FromSignal(signal("r1", "alice", "x", 2), nil)
	cl3, err := s.claim(t.Context(), "c", time.Hour, m3, later)
	if err != nil || !cl3.send || cl3.held != 1 {
		t.Fatalf("third claim %+v %v", cl3, err)
	}
	s.unclaim(t.Context(), cl3, later) // its delivery failed
	m4, _ := FromSignal(signal("r1", "alice", "x", 3), nil)
	cl4, err := s.claim(t.Context(), "c", time.Hour, m4, later.Add(time.Minute))
	if err != nil || !cl4.send || cl4.held != 1 {
		t.Fatalf("claim after a failure %+v %v; want sent with the count", cl4, err)
	}
}

func TestStateOutageSendsAnyway(t *testing.T) {
	r := &recorder{}
	d, err := NewDispatcher(map[string]Channel{"c": {Notifier: r}}, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	d.Start(downState{}, "")
	defer d.Close(context.Background())
	for i := range 2 {
		if err := dispatch(t, d, []string{"c"}, signal("r1", "alice", "x", i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.sent) != 2 {
		t.Errorf("%d sent during a state outage, want 2", len(r.sent))
	}
}

// downState fails every read: suppression is then skipped, not the alert.
type downState struct{ StateStore }

func (downState) GetState(context.Context, string, string) (json.RawMessage, store.Version, error) {
	return nil, store.Version{}, errors.New("state store down")
}
