// Command offtrail finds suspicious AWS activity in CloudTrail data indexed
// in Elasticsearch or OpenSearch (or in files on disk) and writes explained
// alerts back as signals.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/rs/zerolog"
	"golang.org/x/term"
)

// command is one subcommand. Each lives in its own file and registers
// itself from init, so commands can be added without touching this file.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) error
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// cliEnv is what every command gets: its streams and a logger.
type cliEnv struct {
	stdout, stderr io.Writer
	log            zerolog.Logger
}

// exitError carries a specific exit status (e.g. 1 for "rules invalid").
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newLogger(w io.Writer) zerolog.Logger {
	level := zerolog.InfoLevel
	if l, err := zerolog.ParseLevel(os.Getenv("OFFTRAIL_LOG_LEVEL")); err == nil && l != zerolog.NoLevel {
		level = l
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05"}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: offtrail <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'offtrail <command> -h' for a command's flags.")
}

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "offtrail: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &cliEnv{stdout: stdout, stderr: stderr, log: newLogger(stderr)}
	if err := cmd.run(ctx, env, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.err != nil {
				fmt.Fprintf(stderr, "offtrail %s: %v\n", cmd.name, ee.err)
			}
			return ee.code
		}
		fmt.Fprintf(stderr, "offtrail %s: %v\n", cmd.name, err)
		return 1
	}
	return 0
}

// newFlagSet makes a flag set that reports errors instead of exiting.
func newFlagSet(env *cliEnv, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("offtrail "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: offtrail %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}
