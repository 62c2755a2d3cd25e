package detector

import (
	"slices"
	"sort"
)

// Behavioural peers. A new value is judged against identities that behave
// like the actor, not against the whole account: a developer's first IAM
// write is rare among developers even if administrators make it daily
// (DESIGN, Scoring step 2; the Sophos per-user model). Peers are the
// nearestPeers identities of the partition whose value sets (the actions
// or services of their history) are most alike by Jaccard similarity,
// recomputed with every baseline; a partition too small to choose from
// (at most nearestPeers others) falls back to all of them.
const nearestPeers = 10

// peerSets is every entity's set of values over the history, per
// partition: what behavioural peers are chosen from. A set is a sorted
// slice: the history's groups come in key order, so a tick builds each
// set by appending and compares two by one merge, where maps cost a hash
// and an allocation per value on every tick that has a new value. An
// entity's nearest peers are chosen once a tick, for all its new values.
type peerSets struct {
	sets   map[string]map[string]*valueSet // partition -> entity -> values
	nearOf map[string][]string             // partition\x1eentity -> nearest
}

// valueSet is one entity's values, sorted, each once.
type valueSet struct{ vals []string }

// add puts value in the set.
func (v *valueSet) add(value string) {
	n := len(v.vals)
	if n == 0 || v.vals[n-1] < value { // the history's order: append
		v.vals = append(v.vals, value)
		return
	}
	if i, found := slices.BinarySearch(v.vals, value); !found {
		v.vals = slices.Insert(v.vals, i, value)
	}
}

// has reports whether value is in the set (a nil set has nothing).
func (v *valueSet) has(value string) bool {
	if v == nil {
		return false
	}
	_, found := slices.BinarySearch(v.vals, value)
	return found
}

func (v *valueSet) size() int {
	if v == nil {
		return 0
	}
	return len(v.vals)
}

func (p *peerSets) add(part, entity, value string) { p.values(part, entity).add(value) }

// values returns the entity's value set, made empty if it has none yet.
func (p *peerSets) values(part, entity string) *valueSet {
	if p.sets == nil {
		p.sets = map[string]map[string]*valueSet{}
	}
	m := p.sets[part]
	if m == nil {
		m = map[string]*valueSet{}
		p.sets[part] = m
	}
	v := m[entity]
	if v == nil {
		v = &valueSet{}
		m[entity] = v
	}
	return v
}

// nearest returns the entity's most similar peers in its partition
// (itself excluded), most similar first, ties by key. An entity with no
// history resembles nobody: all of the partition are its peers.
func (p *peerSets) nearest(part, entity string) []string {
	memo := part + "\x1e" + entity
	if out, ok := p.nearOf[memo]; ok {
		return out
	}
	mine := p.sets[part][entity]
	limit := nearestPeers
	if mine.size() == 0 {
		limit = len(p.sets[part])
	}
	type cand struct {
		key string
		sim float64
	}
	var all []cand
	for k, set := range p.sets[part] {
		if k != entity {
			all = append(all, cand{k, jaccard(mine, set)})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].sim != all[j].sim {
			return all[i].sim > all[j].sim
		}
		return all[i].key < all[j].key
	})
	if len(all) > limit {
		all = all[:limit]
	}
	out := make([]string, len(all))
	for i, c := range all {
		out[i] = c.key
	}
	if p.nearOf == nil {
		p.nearOf = map[string][]string{}
	}
	p.nearOf[memo] = out
	return out
}

// jaccard is |a ∩ b| / |a ∪ b|, by one merge of the sorted sets.
func jaccard(a, b *valueSet) float64 {
	na, nb := a.size(), b.size()
	if na == 0 && nb == 0 {
		return 0
	}
	inter := 0
	for i, j := 0, 0; i < na && j < nb; {
		switch x, y := a.vals[i], b.vals[j]; {
		case x < y:
			i++
		case x > y:
			j++
		default:
			inter++
			i++
			j++
		}
	}
	return float64(inter) / float64(na+nb-inter)
}

// behaviouralPeers reports whether a rule's peers are chosen by behaviour:
// an identity judged on what it does (actions, services).
func behaviouralPeers(field, by []string) bool {
	if len(by) == 0 || !identityFields[by[len(by)-1]] {
		return false
	}
	for _, f := range field {
		if behaviourFields[f] {
			return true
		}
	}
	return false
}

// peerStats counts, among the entity's behavioural peers, those that
// produced the value in the history or start producing it in the window.
func (p *peerSets) peerStats(part, entity, value string, active map[string]map[string]int64, partOf func(ek string) string) Peers {
	peers := p.nearest(part, entity)
	st := Peers{Total: len(peers), Nearest: p.sets[part][entity].size() > 0 && len(p.sets[part]) > nearestPeers+1}
	for _, k := range peers {
		if p.sets[part][k].has(value) || active[k][value] > 0 {
			st.WithValue++
		}
	}
	// Entities new in the window (no history) that share the value are
	// evidence of a coordinated change too.
	for ek, vals := range active {
		if ek != entity && p.sets[part][ek] == nil && partOf(ek) == part && vals[value] > 0 {
			st.WithValue++
			st.Total++
		}
	}
	return st
}
