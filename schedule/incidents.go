package schedule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/store"
)

// IncidentStore is what incident tracking needs of a backend: state
// documents (each actor's open sessions, compare-and-set) and documents
// written by id, overwriting (the incident alert, updated in place).
type IncidentStore interface {
	GetState(ctx context.Context, index, id string) (json.RawMessage, store.Version, error)
	PutState(ctx context.Context, index, id string, doc json.RawMessage, ifVersion *store.Version) (store.Version, error)
	PutDocs(ctx context.Context, index string, docs []store.Doc) error
}

// Incidents folds each window's rule signals into their actors' sessions
// and keeps one incident document per session up to date in the signals
// index. What it knows between windows lives in the state index, one
// document per actor, so a restart or another replica continues the same
// sessions and the same incident ids: the state is the anomalies of the
// actor's recent sessions and which incidents were announced.
type Incidents struct {
	Store        IncidentStore
	SignalsIndex string
	StateIndex   string
	Options      detector.IncidentOptions
	Now          func() time.Time
	// Triage, if set, fills each incident's triage block before it is
	// written (one batch per Add).
	Triage *detector.Triager

	mu sync.Mutex // one update at a time per process; CAS across processes
	// held are the actor states this process last wrote, with their
	// versions: the next update starts from them instead of reading the
	// state again. Another replica's write in between makes the versioned
	// write fail, and the state is then read as it is (addActor).
	held map[string]heldState
}

// heldState is an actor state document as written, at its version.
type heldState struct {
	doc json.RawMessage
	ver store.Version
}

// maxHeld bounds the states held (an actor's is a few kilobytes): past
// it, the next write starts the map again.
const maxHeld = 10_000

// state returns actor state id, as this process last wrote it when it
// holds it and may use it, else as the store has it.
func (t *Incidents) state(ctx context.Context, id string, useHeld bool) (json.RawMessage, store.Version, error) {
	if h, ok := t.held[id]; ok && useHeld {
		return h.doc, h.ver, nil
	}
	return t.Store.GetState(ctx, t.StateIndex, id)
}

// hold remembers what was written (t.mu held).
func (t *Incidents) hold(id string, doc json.RawMessage, ver store.Version, err error) {
	if err != nil {
		delete(t.held, id)
		return
	}
	if t.held == nil || len(t.held) >= maxHeld {
		t.held = map[string]heldState{}
	}
	t.held[id] = heldState{doc: doc, ver: ver}
}

// actorState is the state document of one actor.
type actorState struct {
	Actor     detector.Actor     `json:"actor"`
	Anomalies []detector.Anomaly `json:"anomalies"`
	Announced []string           `json:"announced,omitempty"`
	Updated   time.Time          `json:"updated"`
}

// IncidentUpdate is one incident written by Add; New says it crossed the
// threshold for the first time (announce it).
type IncidentUpdate struct {
	Incident *detector.Incident
	New      bool
}

// Add merges sigs into their actors' sessions, writes every incident they
// touch and returns them. Adding the same signals twice changes nothing.
func (t *Incidents) Add(ctx context.Context, sigs []*detector.Signal) ([]IncidentUpdate, error) {
	return t.AddFrom(ctx, detector.TriageSource{}, sigs)
}

// AddFrom is Add for signals of one rule whose source (indices and
// profile) holds the actors' history, for the triage baseline.
func (t *Incidents) AddFrom(ctx context.Context, src detector.TriageSource, sigs []*detector.Signal) ([]IncidentUpdate, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	opts := t.Options.WithDefaults()
	byActor := map[detector.Actor][]detector.Anomaly{}
	for _, s := range sigs {
		byActor[s.Actor] = append(byActor[s.Actor], detector.AnomalyOf(s))
	}
	var out []IncidentUpdate
	for _, actor := range sortedActors(byActor) {
		ups, err := t.addActor(ctx, actor, byActor[actor], opts)
		if err != nil {
			return out, fmt.Errorf("incidents of %s: %w", actor.Label, err)
		}
		out = append(out, ups...)
	}
	if len(out) == 0 {
		return out, nil
	}
	if t.Triage != nil {
		incs := make([]*detector.Incident, len(out))
		for i, u := range out {
			incs[i] = u.Incident
		}
		t.Triage.Enrich(ctx, incs, func(*detector.Incident) detector.TriageSource { return src }, nil)
	}
	docs := make([]store.Doc, 0, len(out))
	for _, u := range out {
		b, err := json.Marshal(u.Incident.Document())
		if err != nil {
			return out, err
		}
		docs = append(docs, store.Doc{ID: u.Incident.ID, Source: b})
	}
	if err := t.Store.PutDocs(ctx, t.SignalsIndex, docs); err != nil {
		return out, fmt.Errorf("write %d incident(s) to %s: %w", len(docs), t.SignalsIndex, err)
	}
	return out, nil
}

// addActor updates one actor's state, retrying when another replica
// changed it meanwhile. The first attempt starts from the state this
// process last wrote, if it holds it; a retry reads the store.
func (t *Incidents) addActor(ctx context.Context, actor detector.Actor, fresh []detector.Anomaly, opts detector.IncidentOptions) ([]IncidentUpdate, error) {
	id := actorStateID(actor)
	for attempt := 0; ; attempt++ {
		raw, ver, err := t.state(ctx, id, attempt == 0)
		st := actorState{Actor: actor}
		var ifVer *store.Version
		switch {
		case err == nil:
			if err := json.Unmarshal(raw, &st); err != nil {
				return nil, fmt.Errorf("state %s: %w", id, err)
			}
			ifVer = &ver
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
		ups := t.merge(&st, fresh, opts)
		if len(ups) == 0 {
			return nil, nil // nothing new: every signal was already there
		}
		doc, err := json.Marshal(st)
		if err != nil {
			return nil, err
		}
		newVer, err := t.Store.PutState(ctx, t.StateIndex, id, doc, ifVer)
		t.hold(id, doc, newVer, err)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue // read the state as it is now
		}
		return ups, err
	}
}

// merge adds fresh anomalies to the state, forgets sessions that can no
// longer grow, and returns the incidents of the sessions that changed.
func (t *Incidents) merge(st *actorState, fresh []detector.Anomaly, opts detector.IncidentOptions) []IncidentUpdate {
	known := map[string]bool{}
	for _, a := range st.Anomalies {
		known[a.SignalID] = true
	}
	changed := map[string]bool{}
	for _, a := range fresh {
		if !known[a.SignalID] {
			known[a.SignalID] = true
			st.Anomalies = append(st.Anomalies, a)
			changed[a.SignalID] = true
		}
	}
	if len(changed) == 0 {
		return nil
	}
	var newest time.Time
	for _, a := range st.Anomalies {
		if a.End.After(newest) {
			newest = a.End
		}
	}
	var keep []detector.Anomaly
	var out []IncidentUpdate
	for _, sess := range detector.Sessions(st.Anomalies, opts) {
		end := sess[0].End
		for _, a := range sess {
			if a.End.After(end) {
				end = a.End
			}
		}
		// A session over for longer than a whole session span is done.
		if newest.Sub(end) > opts.MaxSpan+opts.Gap {
			continue
		}
		keep = append(keep, sess...)
		if !slices.ContainsFunc(sess, func(a detector.Anomaly) bool { return changed[a.SignalID] }) {
			continue
		}
		inc := detector.NewIncident(st.Actor, sess, opts)
		inc.Updated = t.now()
		u := IncidentUpdate{Incident: inc}
		if inc.Alert && !slices.Contains(st.Announced, inc.ID) {
			st.Announced = append(st.Announced, inc.ID)
			u.New = true
		}
		out = append(out, u)
	}
	st.Anomalies, st.Updated = keep, t.now()
	st.Announced = pruneAnnounced(st.Announced, keep, st.Actor, opts)
	return out
}

// pruneAnnounced keeps the announcements of sessions still in the state.
func pruneAnnounced(ann []string, kept []detector.Anomaly, actor detector.Actor, opts detector.IncidentOptions) []string {
	live := map[string]bool{}
	for _, sess := range detector.Sessions(kept, opts) {
		live[detector.IncidentID(actor, sess[0])] = true
	}
	return slices.DeleteFunc(ann, func(id string) bool { return !live[id] })
}

func (t *Incidents) now() time.Time {
	if t.Now != nil {
		return t.Now().UTC()
	}
	return time.Now().UTC()
}

func actorStateID(a detector.Actor) string {
	h := sha256.Sum256([]byte(a.Key()))
	return "incident-actor-" + hex.EncodeToString(h[:12])
}

func sortedActors(m map[detector.Actor][]detector.Anomaly) []detector.Actor {
	out := make([]detector.Actor, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b detector.Actor) int {
		if a.Key() < b.Key() {
			return -1
		}
		if a.Key() > b.Key() {
			return 1
		}
		return 0
	})
	return out
}
