package synth

import (
	"math"
	"math/rand/v2"
)

// rngT is the seeded generator. Every stream is derived from (seed,
// purpose, ids), so a part of the output never depends on how many random
// numbers another part drew — days can be generated in parallel and still
// be byte-identical run to run.
type rngT struct{ *rand.Rand }

func newRNG(seed uint64, ids ...uint64) *rngT {
	h := seed ^ 0x6a09e667f3bcc909
	for _, id := range ids {
		h = mix64(h ^ mix64(id+0x9E3779B97F4A7C15))
	}
	return &rngT{rand.New(rand.NewPCG(h, mix64(h^0xbb67ae8584caa73b)))}
}

// mix64 is SplitMix64's finaliser: a cheap, well-spread hash of a uint64.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

const hexDigits = "0123456789abcdef"
const upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func (r *rngT) hex(n int) string { return hexOf(r.Uint64(), n) }

// hexOf expands a seed into n hex digits.
func hexOf(seed uint64, n int) string {
	b := make([]byte, n)
	x := seed
	for i := range b {
		if i%16 == 0 {
			x = mix64(seed + uint64(i))
		}
		b[i] = hexDigits[x&15]
		x >>= 4
	}
	return string(b)
}

// upperOf expands a seed into n characters of the alphabet AWS uses in
// access key and principal ids.
func upperOf(seed uint64, n int) string {
	b := make([]byte, n)
	x := seed
	for i := range b {
		if i%12 == 0 {
			x = mix64(seed ^ uint64(i)*0x9E3779B97F4A7C15)
		}
		b[i] = upperAlnum[x&31]
		x >>= 5
	}
	return string(b)
}

// uuid is a version-4 UUID's 16 bytes.
type uuid [16]byte

func (r *rngT) uuid() uuid { return makeUUID(r.Uint64(), r.Uint64()) }

func makeUUID(a, b uint64) uuid {
	var u uuid
	for i := 0; i < 8; i++ {
		u[i] = byte(a >> (8 * i))
		u[8+i] = byte(b >> (8 * i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

func (u uuid) appendTo(b []byte) []byte {
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&15])
	}
	return b
}

func (u uuid) String() string { return string(u.appendTo(make([]byte, 0, 36))) }

func uuidString(a, b uint64) string { return makeUUID(mix64(a), mix64(b)).String() }

// weighted picks an index with probability proportional to w.
func (r *rngT) weighted(w []float64) int {
	var sum float64
	for _, x := range w {
		sum += x
	}
	f := r.Float64() * sum
	for i, x := range w {
		if f < x {
			return i
		}
		f -= x
	}
	return len(w) - 1
}

// cumPick picks from a cumulative weight table by binary search.
func (r *rngT) cumPick(cum []float64) int {
	f := r.Float64() * cum[len(cum)-1]
	lo, hi := 0, len(cum)-1
	for lo < hi {
		m := (lo + hi) / 2
		if cum[m] > f {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// poisson draws a Poisson count (Knuth for small means, normal
// approximation above).
func (r *rngT) poisson(mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 30 {
		n := int(math.Round(mean + math.Sqrt(mean)*r.NormFloat64()))
		return max(n, 0)
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func (r *rngT) chance(p float64) bool { return r.Float64() < p }

// lognorm returns exp(N(0, sigma)): a positive factor around 1.
func (r *rngT) lognorm(sigma float64) float64 { return math.Exp(r.NormFloat64() * sigma) }
