package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/offtrail/offtrail/detector/store"
)

// ElastAlertScope names ElastAlert's rule in costs.
const ElastAlertScope = "new_term (ARN, action)"

// ElastAlert runs ElastAlert 2's new_term rule on (user ARN, event.action)
// once over a past span of an index, through scripts/elastalert-bench.sh
// (which installs it into a venv and drives it with replay.py).
type ElastAlert struct {
	Script string        // path of scripts/elastalert-bench.sh
	URL    string        // the engine, http://HOST:PORT (ElastAlert's config takes host and port)
	Index  string        // the data, as offtrail's bench loaded it
	Store  store.Backend // the same engine, for node stats
	// Segment is ElastAlert's buffer_time, the span of each query of the
	// replay (0: DefaultElastAlertSegment). At 15 minutes each segment is
	// one run of a live ElastAlert with run_every and buffer_time at
	// offtrail's interval: one query per tick, every event read once.
	Segment time.Duration
	Log     zerolog.Logger
}

// DefaultElastAlertSegment is the replay's buffer_time when none is given.
const DefaultElastAlertSegment = 2 * time.Hour

func (e ElastAlert) segment() time.Duration {
	if e.Segment <= 0 {
		return DefaultElastAlertSegment
	}
	return e.Segment
}

// ElastAlertRun is what one replay cost.
type ElastAlertRun struct {
	Span    time.Duration
	Segment time.Duration // buffer_time: each query's span
	Matches int
	// Startup is the python process's start-up (imports, config, and
	// new_term's aggregation of terms_window_size of history) and the
	// engine's work meanwhile; Replay is the run over the span.
	Startup, Replay Used
	// Client is the python process's whole CPU (wait4, as /usr/bin/time
	// reports it: start-up, replay and exit).
	Client  time.Duration
	PeakRSS uint64
	Settled Settled // the engine's idle CPU rate just before, after waiting for it
}

// Ticks is the span in 15-minute ticks, offtrail's interval.
func (r *ElastAlertRun) Ticks() int { return max(1, int(r.Span/(15*time.Minute))) }

// eaLine is one JSON line replay.py prints.
type eaLine struct {
	Phase   string  `json:"phase"`
	CPU     float64 `json:"cpu"`
	Rules   int     `json:"rules"`
	Matches int     `json:"matches"`
}

func (l eaLine) cpu() time.Duration { return time.Duration(l.CPU * float64(time.Second)) }

// Run replays [start, end).
func (e ElastAlert) Run(ctx context.Context, start, end time.Time) (*ElastAlertRun, error) {
	if !strings.HasPrefix(e.URL, "http://") {
		return nil, fmt.Errorf("elastalert: %s: the bench configures ElastAlert for plain http://HOST:PORT only", e.URL)
	}
	work, err := os.MkdirTemp("", "offtrail-elastalert-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	seg := e.segment()
	if seg%time.Minute != 0 {
		return nil, fmt.Errorf("elastalert: segment %s: whole minutes only", seg)
	}
	minutes := fmt.Sprint(int(seg / time.Minute))
	if out, err := exec.CommandContext(ctx, "bash", e.Script, "setup", work, e.Index, e.URL, "", minutes).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("elastalert setup: %w: %s", err, strings.TrimSpace(string(out)))
	}
	defer func() {
		if out, err := exec.Command("bash", e.Script, "cleanup", work, e.URL).CombinedOutput(); err != nil {
			e.Log.Warn().Err(err).Str("output", string(out)).Msg("elastalert cleanup")
		}
	}()
	meter := Meter{Store: e.Store}
	run := &ElastAlertRun{Span: end.Sub(start), Segment: seg}
	if run.Settled, err = meter.Settle(ctx); err != nil {
		return nil, err
	}
	if err := e.replay(ctx, work, start, end, run); err != nil {
		return nil, fmt.Errorf("%w (log: %s)", err, tail(filepath.Join(work, "err.log"), 600))
	}
	return run, nil
}

// replay runs the python process and samples the engine before it, when
// it has loaded its rules, and when it is done.
func (e ElastAlert) replay(ctx context.Context, work string, start, end time.Time, run *ElastAlertRun) error {
	stderr, err := os.Create(filepath.Join(work, "err.log"))
	if err != nil {
		return err
	}
	defer stderr.Close()
	cmd := exec.CommandContext(ctx, "bash", e.Script, "replay", work, start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	meter := Meter{Store: e.Store}
	s0, err := meter.Take(ctx)
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("elastalert: %w", err)
	}
	lines := bufio.NewScanner(stdout)
	loaded, err := readPhase(lines, "loaded")
	if err != nil {
		_ = cmd.Wait()
		return err
	}
	s1, err := meter.Take(ctx)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		return fmt.Errorf("elastalert: %w", err)
	}
	done, err := readPhase(lines, "done")
	if err != nil {
		_ = cmd.Wait()
		return err
	}
	s2, err := meter.Take(ctx)
	if err != nil {
		return err
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("elastalert: %w", err)
	}
	return run.fill(s0, s1, s2, loaded, done, cmd.ProcessState)
}

// fill turns the three engine samples and the driver's CPU figures into
// the run's costs. The client figures of the samples are offtrail's and
// are not used.
func (r *ElastAlertRun) fill(s0, s1, s2 Sample, loaded, done eaLine, ps *os.ProcessState) error {
	var err error
	if r.Startup, err = s1.Since(s0); err != nil {
		return err
	}
	if r.Replay, err = s2.Since(s1); err != nil {
		return err
	}
	r.Startup.Client, r.Replay.Client = loaded.cpu(), done.cpu()-loaded.cpu()
	r.Matches = done.Matches
	r.Client = ps.UserTime() + ps.SystemTime()
	r.PeakRSS = childPeakRSS(ps)
	return nil
}

func readPhase(sc *bufio.Scanner, phase string) (eaLine, error) {
	for sc.Scan() {
		var l eaLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Phase == phase {
			return l, nil
		}
	}
	if err := sc.Err(); err != nil {
		return eaLine{}, fmt.Errorf("elastalert: %w", err)
	}
	return eaLine{}, fmt.Errorf("elastalert: exited before %q", phase)
}

// tail is the end of a log file, for errors.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// Costs returns the run as two cost lines per tick of its span: the
// replay alone, and with ElastAlert's start-up (which holds its history
// aggregation, paid once per process) spread over the span.
func (r *ElastAlertRun) Costs(backend string, events int) []Cost {
	ticks := time.Duration(r.Ticks())
	seg := r.Segment
	if seg <= 0 {
		seg = DefaultElastAlertSegment
	}
	note := fmt.Sprintf("%s span in buffer_time (%s) segments, %d queries, %d matches; %s",
		r.Span, shortDuration(seg), max(1, int((r.Span+seg-1)/seg)), r.Matches, r.Settled.Note())
	scope := ElastAlertScope + ", " + shortDuration(seg) + " segments"
	return []Cost{
		{Backend: backend, Tool: ToolElastAlert, Scope: scope + ", replay", Events: events, Ticks: r.Ticks(),
			Client: r.Replay.Client / ticks, Engine: r.Replay.Engine / ticks, HasEngine: true,
			Note: note + fmt.Sprintf("; wall %.1f s", r.Replay.Wall.Seconds())},
		{Backend: backend, Tool: ToolElastAlert, Scope: scope + ", with start-up", Events: events, Ticks: r.Ticks(),
			Client: r.Client / ticks, Engine: (r.Startup.Engine + r.Replay.Engine) / ticks, HasEngine: true, PeakRSS: r.PeakRSS,
			Note: fmt.Sprintf("python CPU (wait4) %.1f s, of it start-up %.1f s; engine %.1f s, of it start-up %.1f s",
				r.Client.Seconds(), r.Startup.Client.Seconds(), (r.Startup.Engine + r.Replay.Engine).Seconds(), r.Startup.Engine.Seconds())},
	}
}

// shortDuration renders 2h0m0s as 2h and 15m0s as 15m.
func shortDuration(d time.Duration) string {
	switch {
	case d > 0 && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d > 0 && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
