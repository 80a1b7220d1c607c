// Package verdict reads a ginkgo JUnit report and judges it against a
// lane's expected-failures list, for the lanes that run a ginkgo suite
// against berthd (test/critest, test/node-e2e; test/vm runs critest's).
// The list only shrinks: an unlisted failure or skip, a listed spec that
// passes, and on a full run a listed spec the suite does not have, each
// fail the run.
package verdict

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// junit is the part of ginkgo's JUnit report the harness reads.
type junit struct {
	Suites []struct {
		Cases []junitCase `xml:"testcase"`
	} `xml:"testsuite"`
}

type junitCase struct {
	Name    string  `xml:"name,attr"`
	Status  string  `xml:"status,attr"`
	Time    float64 `xml:"time,attr"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
	Failure *struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	} `xml:"failure"`
	Error *struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	} `xml:"error"`
}

// Result is one spec's outcome.
type Result struct {
	Name   string // the spec's full text, as in the expected list
	Status string // passed, failed, skipped
	Reason string // first line of the failure or skip message
	Time   time.Duration
	NotRun bool // left out by focus/skip, not skipped by the spec itself
}

// ReadJUnit reads ginkgo's report. Suite nodes ([BeforeSuite] and the
// like) count only when they fail: they are not specs.
func ReadJUnit(path string) ([]Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var j junit
	if err := xml.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var out []Result
	for _, s := range j.Suites {
		for _, c := range s.Cases {
			r := Result{Name: strings.TrimPrefix(c.Name, "[It] "), Time: time.Duration(c.Time * float64(time.Second))}
			// ginkgo reports a spec that focus or skip left out (critest
			// always skips its benchmarks) as skipped with no reason.
			r.NotRun = c.Status == "skipped" && c.Skipped != nil && c.Skipped.Message == "skipped"
			switch c.Status {
			case "passed":
				r.Status = "passed"
			case "skipped", "pending":
				r.Status = "skipped"
				if c.Skipped != nil {
					r.Reason = firstLine(c.Skipped.Message)
				}
			default:
				r.Status = "failed"
				switch {
				case c.Failure != nil:
					r.Reason = firstLine(failureText(c.Failure.Message, c.Failure.Text))
				case c.Error != nil:
					r.Reason = firstLine(failureText(c.Error.Message, c.Error.Text))
				default:
					r.Reason = c.Status
				}
			}
			if !strings.HasPrefix(c.Name, "[It] ") && r.Status != "failed" {
				continue
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func failureText(msg, text string) string {
	if strings.TrimSpace(msg) != "" {
		return msg
	}
	return text
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	// A gRPC error is the useful part of gomega's "Unexpected error:
	// <*status.Error | 0x...>: { ...struct dump... }".
	if i := strings.Index(s, "rpc error: code = "); i >= 0 {
		head := strings.TrimSpace(s[:strings.IndexByte(s+"\n", '\n')])
		rpc := s[i:]
		if j := strings.IndexByte(rpc, '\n'); j >= 0 {
			rpc = rpc[:j]
		}
		s = head + ": " + strings.TrimSpace(rpc)
	}
	// ginkgo prefixes skip messages with "skipped - ".
	s = strings.TrimPrefix(s, "skipped - ")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		rest := strings.TrimSpace(s[i+1:])
		s = strings.TrimSpace(s[:i])
		// gomega puts the useful part on the next lines ("Expected ... to ...").
		if len(s) < 60 && rest != "" {
			s += " " + strings.Join(strings.Fields(rest), " ")
		}
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// Expectation is one line of the expected list.
type Expectation struct {
	Reason string
	Line   int
}

// ReadExpected reads "<spec name> | <reason>" lines; # starts a comment.
// Every reason starts with one of allowed ("kernel:", ...): the lane's
// categories of facts that are not Berth's to fix.
func ReadExpected(path string, allowed []string) (map[string]Expectation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]Expectation{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndex(l, " | ")
		if i < 0 {
			return nil, fmt.Errorf("%s:%d: want \"<spec name> | <reason>\"", path, n)
		}
		name, reason := strings.TrimSpace(l[:i]), strings.TrimSpace(l[i+3:])
		ok := false
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(reason, a)
		}
		if !ok {
			return nil, fmt.Errorf("%s:%d: reason %q must start with one of %v", path, n, reason, allowed)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s:%d: %q listed twice", path, n, name)
		}
		out[name] = Expectation{Reason: reason, Line: n}
	}
	return out, sc.Err()
}

// Judge compares results with the expected list and prints, to w, the
// expected failures and skips, the problems and the closing line "N
// passed, N failed, N skipped" (specs that focus or skip left out are not
// counted: they did not run). It returns the problems that fail the run:
// a failure or a skip not listed (a feature Status stops announcing would
// otherwise hide its specs), a listed spec that passed (the list only
// shrinks), and, on a full run, a listed name the suite does not have (a
// typo or a renamed spec).
func Judge(w io.Writer, results []Result, expected map[string]Expectation, fullRun bool) []string {
	var passed, failed, skipped, notRun int
	var problems []string
	seen := map[string]bool{}
	sort.Slice(results, func(i, j int) bool { return results[i].Name < results[j].Name })
	for _, r := range results {
		seen[r.Name] = true
		e, listed := expected[r.Name]
		switch r.Status {
		case "passed":
			passed++
			if listed {
				problems = append(problems, fmt.Sprintf("PASSES NOW, remove it from the list (line %d): %s", e.Line, r.Name))
			}
		case "skipped":
			if r.NotRun {
				notRun++
				continue
			}
			skipped++
			if listed {
				fmt.Fprintf(w, "expected skip: %s\n    %s\n", r.Name, e.Reason)
			} else {
				problems = append(problems, fmt.Sprintf("SKIPPED but not listed: %s\n    %s", r.Name, r.Reason))
			}
		case "failed":
			failed++
			if listed {
				fmt.Fprintf(w, "expected failure: %s\n    %s\n", r.Name, e.Reason)
			} else {
				problems = append(problems, fmt.Sprintf("FAILED: %s\n    %s", r.Name, r.Reason))
			}
		}
	}
	if fullRun {
		var names []string
		for n := range expected {
			if !seen[n] {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			problems = append(problems, fmt.Sprintf("listed but not run by the suite (line %d): %s", expected[n].Line, n))
		}
	}
	for _, p := range problems {
		fmt.Fprintln(w, p)
	}
	fmt.Fprintf(w, "(%d specs of the suite were not selected by focus and skip)\n", notRun)
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	return problems
}

// WriteFailures writes every failed spec with its one-line reason (for
// people fixing them), and the skipped ones with why.
func WriteFailures(path string, results []Result, expected map[string]Expectation) error {
	var b strings.Builder
	for _, status := range []string{"failed", "skipped"} {
		fmt.Fprintf(&b, "# %s\n", status)
		for _, r := range results {
			if r.Status != status || r.NotRun {
				continue
			}
			tag := ""
			if e, ok := expected[r.Name]; ok {
				tag = " [expected: " + e.Reason + "]"
			}
			fmt.Fprintf(&b, "%s%s\n    %s\n", r.Name, tag, r.Reason)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// Lane is one lane's judging of a run: its expected list, the reasons
// that list may give, and where the failures files go.
type Lane struct {
	Expected string
	Reasons  []string
	// FailuresFiles each get every failed and skipped spec with its
	// reason (WriteFailures); empty paths are ignored.
	FailuresFiles []string
}

// JudgeReport reads report, writes the failures files and judges the run
// (Judge) on standard output; problems are an error naming the list.
func (l Lane) JudgeReport(report string, fullRun bool) error {
	results, err := ReadJUnit(report)
	if err != nil {
		return err
	}
	expected, err := ReadExpected(l.Expected, l.Reasons)
	if err != nil {
		return err
	}
	for _, p := range l.FailuresFiles {
		if p != "" {
			if err := WriteFailures(p, results, expected); err != nil {
				return err
			}
		}
	}
	if problems := Judge(os.Stdout, results, expected, fullRun); len(problems) > 0 {
		return fmt.Errorf("%d problem(s) against %s; report %s", len(problems), l.Expected, report)
	}
	return nil
}
