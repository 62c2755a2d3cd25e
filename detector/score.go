package detector

import (
	"math"
)

// Scoring turns a probability into a 0–100 score that means the same on
// every rule and every engine.
//
//	S     = -log10(p)                      surprisal in decimal digits ("1 in 10^S")
//	score = 100 / (1 + exp(-(S - Mid) / Width))
//
// With Mid = 3.95 and Width = 0.5, score 50 is "1 in 9,000", 75 is
// "1 in 32,000" and 90 is "1 in 110,000". The logistic keeps the score
// bounded and strictly monotone in surprisal; the constants were chosen so
// that a person with a month of ordinary history calling an API that nobody
// in the account has called lands above 75, while an API half of their peers
// use, or the first actions of a brand-new identity, stay well below.
const (
	ScoreMid   = 3.95
	ScoreWidth = 0.5
	// minProbability keeps surprisal finite.
	minProbability = 1e-12
)

// Surprisal returns -log10(p).
func Surprisal(p float64) float64 {
	if p < minProbability {
		p = minProbability
	}
	if p > 1 {
		p = 1
	}
	return -math.Log10(p)
}

// ScoreFromSurprisal maps surprisal to 0–100.
func ScoreFromSurprisal(s float64) float64 {
	return 100 / (1 + math.Exp(-(s-ScoreMid)/ScoreWidth))
}

// Score maps a probability to 0–100.
func Score(p float64) float64 { return ScoreFromSurprisal(Surprisal(p)) }

// Confidence says how far a score can be trusted, from the score and how
// much history the entity has: a brand-new identity is never judged with
// high confidence.
type Confidence string

const (
	ConfidenceLow    Confidence = "low"
	ConfidenceMedium Confidence = "medium"
	ConfidenceHigh   Confidence = "high"
)

// History thresholds for confidence, in baseline events.
const (
	highConfidenceEvents   = 500
	mediumConfidenceEvents = 50
)

// ConfidenceFor grades a score given the entity's baseline size.
func ConfidenceFor(score float64, baselineEvents int64) Confidence {
	switch {
	case score >= 85 && baselineEvents >= highConfidenceEvents:
		return ConfidenceHigh
	case score >= 60 && baselineEvents >= mediumConfidenceEvents:
		return ConfidenceMedium
	default:
		return ConfidenceLow
	}
}

// Baseline is what an entity did during the history window: how many
// events of each value.
type Baseline struct {
	Counts map[string]int64 // value key -> events
	Total  int64            // sum of Counts
	// Singletons is the number of values seen exactly once (Good–Turing's N1).
	Singletons int64
}

// Add counts n events of value v.
func (b *Baseline) Add(v string, n int64) {
	if b.Counts == nil {
		b.Counts = map[string]int64{}
	}
	old := b.Counts[v]
	b.Counts[v] = old + n
	b.Total += n
	switch {
	case old == 0 && n == 1:
		b.Singletons++
	case old == 1:
		b.Singletons--
	}
}

// without returns a copy of b that never saw v.
func (b *Baseline) without(v string) *Baseline {
	out := &Baseline{Counts: make(map[string]int64, len(b.Counts))}
	for k, n := range b.Counts {
		if k != v {
			out.Add(k, n)
		}
	}
	return out
}

// Distinct is the number of different values seen.
func (b *Baseline) Distinct() int { return len(b.Counts) }

// Novelty estimates how likely the entity's next event is a value it has
// never produced: the Good–Turing estimate N1/N, with add-one smoothing so
// that an entity with no history is maximally uncertain (1/2) rather than
// certain, and one whose values all repeat is still not impossible.
func (b *Baseline) Novelty() float64 {
	return float64(b.Singletons+1) / float64(b.Total+2)
}

// Peers describes how common a value is among the entity's peers (the
// other entities of the same partition).
type Peers struct {
	Total     int  // peers with any history
	WithValue int  // peers that produced the value
	Nearest   bool // chosen by behaviour (the most similar), not the whole partition
}

// Share is the prior share of novelty that goes to a value: a value half of
// the peers produce gets about half, one nobody produced gets 1/(2(P+1)).
func (p Peers) Share() float64 {
	return (float64(p.WithValue) + 0.5) / (float64(p.Total) + 1)
}

// Estimate is the probability of one (entity, value) pair and its parts.
type Estimate struct {
	Probability float64
	Surprisal   float64
	Score       float64
	Novel       bool    // never produced in the history
	Novelty     float64 // the entity's novelty probability
	PeerShare   float64 // for novel values
}

// automationWeight scales the surprisal of identities that behave like
// automation: they are expected to be predictable, so a departure is worth
// more.
const automationWeight = 1.15

// Estimate scores value v for an entity with baseline b and the value's peer
// statistics.
func EstimateValue(b *Baseline, v string, peers Peers, automation bool) Estimate {
	nov := b.Novelty()
	e := Estimate{Novelty: nov}
	if n := b.Counts[v]; n > 0 {
		e.Probability = (1 - nov) * float64(n) / float64(b.Total)
	} else {
		e.Novel = true
		e.PeerShare = peers.Share()
		e.Probability = nov * e.PeerShare
	}
	e.Surprisal = Surprisal(e.Probability)
	if automation {
		e.Surprisal *= automationWeight
	}
	e.Score = ScoreFromSurprisal(e.Surprisal)
	return e
}
