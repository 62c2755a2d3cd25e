package main

import (
	"flag"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/offtrail/offtrail/detector"
	"github.com/offtrail/offtrail/detector/baseline"
	"github.com/offtrail/offtrail/detector/store"
	"github.com/offtrail/offtrail/schedule"
)

// baselineFlags choose whether history counts come from the day documents
// in the state index (detector/baseline) and which index holds them.
type baselineFlags struct {
	on         bool
	stateIndex string
}

func addBaselineFlags(fs *flag.FlagSet) *baselineFlags {
	f := &baselineFlags{}
	fs.BoolVar(&f.on, "baselines", true, "answer history counts from per-day baseline documents in the state index (false: aggregate the raw history every tick)")
	fs.StringVar(&f.stateIndex, "state-index", schedule.DefaultStateIndex, "state index holding the baseline day documents")
	return f
}

// store wraps st for the detector; the cache is nil when baselines are off.
func (f *baselineFlags) store(env *cliEnv, st store.Backend) (detector.Store, *baseline.Cache, error) {
	if !f.on {
		return st, nil, nil
	}
	return newBaselineCache(env, st, f.stateIndex)
}

func newBaselineCache(env *cliEnv, st store.Backend, stateIndex string) (detector.Store, *baseline.Cache, error) {
	c, err := baseline.New(st, baseline.Options{StateIndex: stateIndex, Log: env.log})
	if err != nil {
		return nil, nil, err
	}
	return c, c, nil
}

// reportBaselines says where the history counts came from, so a run that
// read no day document and counted everything raw is visible.
func reportBaselines(env *cliEnv, c *baseline.Cache) {
	if c == nil {
		return
	}
	s := c.Stats()
	fmt.Fprintf(env.stderr, "baselines: %d history counts, %d answered from days (%d days from memory, %d from the state index, %d counted now); %d raw counts",
		s.Requests, s.Split, s.DaysMemory, s.DaysState, s.DaysBuilt, s.RawQueries)
	if s.TailAnswers > 0 || s.TailFallbacks > 0 {
		fmt.Fprintf(env.stderr, "; %d answered from the tail (%d reads, %d events)", s.TailAnswers, s.TailReads, s.TailEvents)
	}
	if s.TailFallbacks > 0 {
		fmt.Fprintf(env.stderr, "; %d sent to the store because a tail read reached its limit", s.TailFallbacks)
	}
	if s.StateErrors > 0 {
		fmt.Fprintf(env.stderr, "; %d state index errors (days not kept)", s.StateErrors)
	}
	fmt.Fprintln(env.stderr)
}

// registerBaselineMetrics exports where history counts come from: a rate
// of days counted that does not fall after the first day says the state
// index is not keeping them.
func registerBaselineMetrics(reg prometheus.Registerer, c *baseline.Cache) {
	for _, m := range []struct {
		name, help string
		value      func(baseline.Stats) int64
	}{
		{"requests_total", "History counts asked for.", func(s baseline.Stats) int64 { return s.Requests }},
		{"split_total", "History counts answered from baseline days plus raw edges.", func(s baseline.Stats) int64 { return s.Split }},
		{"raw_queries_total", "Counts sent to the store (edges, short spans, day builds).", func(s baseline.Stats) int64 { return s.RawQueries }},
		{"days_memory_total", "Baseline days served from memory.", func(s baseline.Stats) int64 { return s.DaysMemory }},
		{"days_state_total", "Baseline days read from the state index.", func(s baseline.Stats) int64 { return s.DaysState }},
		{"days_built_total", "Baseline days counted from raw events.", func(s baseline.Stats) int64 { return s.DaysBuilt }},
		{"days_expired_total", "Baseline day documents deleted as they fell out of the kept span.", func(s baseline.Stats) int64 { return s.Expired }},
		{"state_errors_total", "Failed reads or writes of baseline day documents.", func(s baseline.Stats) int64 { return s.StateErrors }},
		{"tail_answers_total", "Counts and event reads answered from the tail of recent events.", func(s baseline.Stats) int64 { return s.TailAnswers }},
		{"tail_reads_total", "Reads of recent events from the store into the tail.", func(s baseline.Stats) int64 { return s.TailReads }},
		{"tail_events_total", "Events read into the tail.", func(s baseline.Stats) int64 { return s.TailEvents }},
		{"tail_fallbacks_total", "Counts sent to the store because a tail read reached its limit.", func(s baseline.Stats) int64 { return s.TailFallbacks }},
		{"tail_rereads_total", "Sealed hours read again because the store held more events than the tail (late deliveries).", func(s baseline.Stats) int64 { return s.TailRereads }},
		{"days_from_hours_total", "Baseline days summed from the hours held as they sealed, not counted by the store.", func(s baseline.Stats) int64 { return s.DaysFromHours }},
		{"hours_state_total", "Hours read from the document of their day, not counted by the store.", func(s baseline.Stats) int64 { return s.HoursFromState }},
		{"sums_shifted_total", "Sums of a span's days or hours moved by the parts that came and left, not summed again.", func(s baseline.Stats) int64 { return s.DaySumsShifted + s.HourSumsShifted }},
		{"sums_summed_total", "Sums of a span's days or hours made from all their parts: a series' first, or none kept near it.", func(s baseline.Stats) int64 { return s.DaySumsSummed + s.HourSumsSummed }},
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "offtrail", Subsystem: "baseline", Name: m.name, Help: m.help},
			func() float64 { return float64(m.value(c.Stats())) }))
	}
}
