package notify

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// A reload swaps the channels without losing what is queued: a message
// waiting on the old "ops" channel (its server slow) is delivered there;
// messages after the swap go to the new channels only, and a channel the
// new configuration drops is unknown.
func TestAdoptKeepsQueuedMessages(t *testing.T) {
	slow := &blocking{release: make(chan struct{})}
	oldPager := &recorder{}
	d, _, _ := newTestDispatcher(t, map[string]Channel{
		"ops":   {Notifier: slow, SuppressFor: -1},
		"pager": {Notifier: oldPager, SuppressFor: -1},
	}, Options{})
	first, _ := FromSignal(signal("r1", "alice", "StopLogging", 1), nil)
	second, _ := FromSignal(signal("r1", "bob", "DeleteTrail", 2), nil)
	if err := d.Enqueue([]string{"ops"}, first, second); err != nil {
		t.Fatal(err)
	}

	newOps, newChat := &recorder{}, &recorder{}
	next, err := NewDispatcher(map[string]Channel{
		"ops":  {Notifier: newOps, SuppressFor: -1},
		"chat": {Notifier: newChat, SuppressFor: -1},
	}, Options{Logger: zerolog.Nop(), DefaultChannels: []string{"chat"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Adopt(next); err != nil {
		t.Fatal(err)
	}
	if got := d.Channels(); len(got) != 2 || got[0] != "chat" || got[1] != "ops" {
		t.Fatalf("channels after adopt: %v", got)
	}
	if err := d.Enqueue([]string{"pager"}, first); err == nil {
		t.Error("enqueue to a channel the reload removed: no error")
	}
	third, _ := FromSignal(signal("r1", "carol", "CreateUser", 3), nil)
	if err := d.Enqueue(nil, third); err != nil { // the new default channel
		t.Fatal(err)
	}
	if err := d.Enqueue([]string{"ops"}, third); err != nil {
		t.Fatal(err)
	}
	close(slow.release) // the old server answers at last
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := slow.calls.Load(); n != 2 {
		t.Errorf("old ops channel delivered %d of its 2 queued messages", n)
	}
	if newOps.count() != 1 || newChat.count() != 1 || oldPager.count() != 0 {
		t.Errorf("new ops %d, chat %d, old pager %d; want 1, 1, 0", newOps.count(), newChat.count(), oldPager.count())
	}
}

// Before Start, queued messages move to the channel of the same name.
func TestAdoptBeforeStart(t *testing.T) {
	old := &recorder{}
	d, err := NewDispatcher(map[string]Channel{"ops": {Notifier: old, SuppressFor: -1}}, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := FromSignal(signal("r1", "alice", "StopLogging", 1), nil)
	if err := d.Enqueue([]string{"ops"}, m); err != nil {
		t.Fatal(err)
	}
	nu := &recorder{}
	next, _ := NewDispatcher(map[string]Channel{"ops": {Notifier: nu, SuppressFor: -1}}, Options{Logger: zerolog.Nop()})
	if err := d.Adopt(next); err != nil {
		t.Fatal(err)
	}
	d.Start(nil, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_ = d.Close(ctx)
	if nu.count() != 1 || old.count() != 0 {
		t.Errorf("new %d old %d, want 1 0", nu.count(), old.count())
	}
}
