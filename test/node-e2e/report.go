package main

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

// result is one spec's outcome.
type result struct {
	name   string // the spec's full text, as in the expected list
	status string // passed, failed, skipped
	reason string // first line of the failure or skip message
	time   time.Duration
	notRun bool // left out by focus/skip, not skipped by the spec itself
}

// readJUnit reads ginkgo's report. Suite nodes ([BeforeSuite] and the
// like) count only when they fail: they are not specs.
func readJUnit(path string) ([]result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var j junit
	if err := xml.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var out []result
	for _, s := range j.Suites {
		for _, c := range s.Cases {
			r := result{name: strings.TrimPrefix(c.Name, "[It] "), time: time.Duration(c.Time * float64(time.Second))}
			// ginkgo reports a spec that focus or skip left out as
			// skipped with no reason.
			r.notRun = c.Status == "skipped" && c.Skipped != nil && c.Skipped.Message == "skipped"
			switch c.Status {
			case "passed":
				r.status = "passed"
			case "skipped", "pending":
				r.status = "skipped"
				if c.Skipped != nil {
					r.reason = firstLine(c.Skipped.Message)
				}
			default:
				r.status = "failed"
				switch {
				case c.Failure != nil:
					r.reason = firstLine(failureText(c.Failure.Message, c.Failure.Text))
				case c.Error != nil:
					r.reason = firstLine(failureText(c.Error.Message, c.Error.Text))
				default:
					r.reason = c.Status
				}
			}
			if !strings.HasPrefix(c.Name, "[It] ") && r.status != "failed" {
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

// Reasons an expected-failures line may give: facts about the host the
// suite runs on, never about Berth. The kernel lacks a feature or a
// module; the host lacks something a node has (systemd as PID 1, a
// capability); the image cannot exist offline; the kubelet cannot do it
// for a runtime it has no built-in support for.
var allowedReasons = []string{"kernel:", "host:", "offline:", "kubelet:"}

// expectation is one line of the expected list.
type expectation struct {
	reason string
	line   int
}

// readExpected reads "<spec name> | <reason>" lines; # starts a comment.
func readExpected(path string) (map[string]expectation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]expectation{}
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
		for _, a := range allowedReasons {
			ok = ok || strings.HasPrefix(reason, a)
		}
		if !ok {
			return nil, fmt.Errorf("%s:%d: reason %q must start with one of %v", path, n, reason, allowedReasons)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s:%d: %q listed twice", path, n, name)
		}
		out[name] = expectation{reason: reason, line: n}
	}
	return out, sc.Err()
}

// verdict compares results with the expected list and prints the
// summary. It returns the problems that fail the run: a failure or a
// skip not listed (a feature Status stops announcing would otherwise
// hide its specs), a listed spec that passed (the list only shrinks),
// and, on a full run, a listed name the suite does not have (a typo or a
// renamed spec).
func verdict(w io.Writer, results []result, expected map[string]expectation, fullRun bool) []string {
	var passed, failed, skipped, notRun int
	var problems []string
	seen := map[string]bool{}
	sort.Slice(results, func(i, j int) bool { return results[i].name < results[j].name })
	for _, r := range results {
		seen[r.name] = true
		e, listed := expected[r.name]
		switch r.status {
		case "passed":
			passed++
			if listed {
				problems = append(problems, fmt.Sprintf("PASSES NOW, remove it from the list (line %d): %s", e.line, r.name))
			}
		case "skipped":
			if r.notRun {
				notRun++
				continue
			}
			skipped++
			switch {
			case !listed:
				problems = append(problems, fmt.Sprintf("SKIPPED but not listed: %s\n    %s", r.name, r.reason))
			default:
				fmt.Fprintf(w, "expected skip: %s\n    %s\n", r.name, e.reason)
			}
		case "failed":
			failed++
			if listed {
				fmt.Fprintf(w, "expected failure: %s\n    %s\n", r.name, e.reason)
			} else {
				problems = append(problems, fmt.Sprintf("FAILED: %s\n    %s", r.name, r.reason))
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
			problems = append(problems, fmt.Sprintf("listed but not run by the suite (line %d): %s", expected[n].line, n))
		}
	}
	for _, p := range problems {
		fmt.Fprintln(w, p)
	}
	fmt.Fprintf(w, "(%d specs of the suite were not selected by focus and skip)\n", notRun)
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	return problems
}

// writeFailures writes every failed spec with its one-line reason (for
// people fixing them), and the skipped ones with why.
func writeFailures(path string, results []result, expected map[string]expectation) error {
	var b strings.Builder
	for _, status := range []string{"failed", "skipped"} {
		fmt.Fprintf(&b, "# %s\n", status)
		for _, r := range results {
			if r.status != status || r.notRun {
				continue
			}
			tag := ""
			if e, ok := expected[r.name]; ok {
				tag = " [expected: " + e.reason + "]"
			}
			fmt.Fprintf(&b, "%s%s\n    %s\n", r.name, tag, r.reason)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
