package detector

import (
	"sync"
	"time"

	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/rules"
)

// A rule that looks back further than its interval sees each of its
// signals again in every later window that still holds the signal's
// first event (aws-rare-method-for-user looks back 2 h every 15 min: eight
// times). The signal's id is the same each time (SignalID: the first
// event is), so the create-only write drops the copy and the incidents
// add nothing; building it again still costs its events, its context
// counts and the write. The detector therefore remembers, per rule, the
// pairs whose signals a fully written window held (the scheduler says so:
// Written), and skips them while their first event is in the window.
//
// This holds for every job because a pair's events are chosen by the
// rule and the pair alone (its filter, and a keep that depends on the
// pair's hour, slot or the rule's timezone): the events of a later window
// before the remembered first are a subset of the earlier window's, which
// had none. A full evaluation would yield the same id, which the
// create-only write drops, or no signal at all (an off-hours candidate
// refined away), which writes nothing: skipping changes no document.
//
// What is remembered belongs to one definition of the rule (its
// *rules.Rule): a rule edited, or reloaded, starts again, since a new
// filter may choose other first events.
type repeats struct {
	mu    sync.Mutex
	rules map[string]*ruleRepeats // rule id -> its written pairs
}

type ruleRepeats struct {
	def   *rules.Rule
	pairs map[string]written // entity\x1evalue -> signal
}

// written is what is remembered of a signal that was written.
type written struct {
	first    time.Time // its first event
	attached bool      // a building block (not counted against max_signals)
}

// Written tells the detector that the signals of rule r's window w are
// written and folded into incidents: later windows that still hold a
// signal's first event skip it (Result.Repeats). Pairs whose first event
// fell behind w are forgotten. Call it only once the window is fully
// written: a window retried after a failed write must build them again.
func (d *Detector) Written(r *rules.Rule, w store.Window, sigs []*Signal) {
	d.repeats.mu.Lock()
	defer d.repeats.mu.Unlock()
	if d.repeats.rules == nil {
		d.repeats.rules = map[string]*ruleRepeats{}
	}
	rr := d.repeats.rules[r.ID]
	if rr == nil || rr.def != r {
		rr = &ruleRepeats{def: r, pairs: map[string]written{}}
		d.repeats.rules[r.ID] = rr
	}
	held := rr.pairs
	for pair, s := range held {
		if s.first.Before(w.From) {
			delete(held, pair)
		}
	}
	for _, s := range sigs {
		if s.pair != "" && len(s.Events) > 0 {
			held[s.pair] = written{first: s.Events[0].Time, attached: s.Attached}
		}
	}
}

// repeated reports whether c's signal was written for an earlier window
// and its first event is still in w, and whether it was attached.
func (d *Detector) repeated(r *rules.Rule, c *candidate, w store.Window) (ok, attached bool) {
	d.repeats.mu.Lock()
	defer d.repeats.mu.Unlock()
	rr := d.repeats.rules[r.ID]
	if rr == nil || rr.def != r {
		return false, false
	}
	s, ok := rr.pairs[c.entityKey+"\x1e"+c.valueKey]
	return ok && w.Contains(s.first), s.attached
}
