package detector

import "sort"

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
// partition: what behavioural peers are chosen from.
type peerSets map[string]map[string]map[string]bool // partition -> entity -> values

func (p peerSets) add(part, entity, value string) { p.values(part, entity)[value] = true }

// values returns the entity's value set, made empty if it has none yet.
func (p peerSets) values(part, entity string) map[string]bool {
	if p[part] == nil {
		p[part] = map[string]map[string]bool{}
	}
	if p[part][entity] == nil {
		p[part][entity] = map[string]bool{}
	}
	return p[part][entity]
}

// nearest returns the entity's most similar peers in its partition
// (itself excluded), most similar first, ties by key. An entity with no
// history resembles nobody: all of the partition are its peers.
func (p peerSets) nearest(part, entity string) []string {
	mine := p[part][entity]
	limit := nearestPeers
	if len(mine) == 0 {
		limit = len(p[part])
	}
	type cand struct {
		key string
		sim float64
	}
	var all []cand
	for k, set := range p[part] {
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
	return out
}

func jaccard(a, b map[string]bool) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 0
	}
	inter := 0
	for v := range a {
		if b[v] {
			inter++
		}
	}
	return float64(inter) / float64(len(a)+len(b)-inter)
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
func (p peerSets) peerStats(part, entity, value string, active map[string]map[string]int64, partOf func(ek string) string) Peers {
	peers := p.nearest(part, entity)
	st := Peers{Total: len(peers), Nearest: len(p[part][entity]) > 0 && len(p[part]) > nearestPeers+1}
	for _, k := range peers {
		if p[part][k][value] || active[k][value] > 0 {
			st.WithValue++
		}
	}
	// Entities new in the window (no history) that share the value are
	// evidence of a coordinated change too.
	for ek, vals := range active {
		if ek != entity && p[part][ek] == nil && partOf(ek) == part && vals[value] > 0 {
			st.WithValue++
			st.Total++
		}
	}
	return st
}
