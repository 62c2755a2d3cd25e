package ruletest

import (
	"fmt"
	"io"
	"strings"
)

// Write prints a file's result: each failed case with its diff and what
// fired (scores and reasons), then one summary line. Verbose also lists
// the passed cases and what they fired.
func Write(w io.Writer, f *FileResult, verbose bool) {
	for _, d := range f.Diags {
		fmt.Fprintln(w, d.String())
	}
	for _, c := range f.Cases {
		pos := fmt.Sprintf("%s:%d:%d", f.Name, c.Case.Line, c.Case.Column)
		switch {
		case c.Err != nil:
			fmt.Fprintf(w, "%s: case %q: %s\n", c.Err.File+position(c.Err.Line, c.Err.Column), c.Case.Name, c.Err.Message)
		case !c.Passed():
			fmt.Fprintf(w, "%s: case %q failed:\n", pos, c.Case.Name)
			for _, p := range c.Problems {
				fmt.Fprintln(w, indent(p, "  "))
			}
			writeFired(w, c)
		case verbose:
			fmt.Fprintf(w, "%s: case %q passed\n", pos, c.Case.Name)
			writeFired(w, c)
		}
	}
	fmt.Fprintln(w, Summary(f))
}

// Summary is the file's one line: "x_test.yml: 3 cases, 3 passed".
func Summary(f *FileResult) string {
	n, ok := len(f.Cases), f.Passed()
	s := fmt.Sprintf("%s: %d %s, %d passed", f.Name, n, plural(n, "case"), ok)
	if n > ok {
		s += fmt.Sprintf(", %d failed", n-ok)
	}
	if e := len(f.Diags.Errors()); e > 0 {
		s += fmt.Sprintf(", %d %s in the file", e, plural(e, "error"))
	}
	return s
}

func position(line, col int) string {
	switch {
	case line > 0 && col > 0:
		return fmt.Sprintf(":%d:%d", line, col)
	case line > 0:
		return fmt.Sprintf(":%d", line)
	}
	return ""
}

// writeFired lists every signal of the rules under test and every
// incident, with scores and reasons: what a failing test needs to be
// fixed, or its expectations tuned.
func writeFired(w io.Writer, c *CaseResult) {
	if len(c.Signals) == 0 {
		fmt.Fprintln(w, "  fired: nothing")
		return
	}
	fmt.Fprintf(w, "  fired: %d %s, %d %s (alerting at %g)\n", len(c.Signals), plural(len(c.Signals), "signal"),
		len(c.Incidents), plural(len(c.Incidents), "incident"), c.Case.Threshold)
	for _, s := range c.Signals {
		fmt.Fprintf(w, "    signal %s\n      %s\n", signalLine(s), s.Reason)
	}
	for _, inc := range c.Incidents {
		alert := "below threshold"
		if inc.Alert {
			alert = "alerts"
		}
		fmt.Fprintf(w, "    incident %s | %s\n      %s\n", incidentLine(inc), alert, inc.Summary)
	}
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
