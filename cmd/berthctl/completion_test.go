package main

import (
	"bufio"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// What needs no endpoint: command names, berthctl's flags and -o values,
// and file arguments.
func TestComplete(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"ru"}, "run runp"},
		{[]string{"__"}, ""}, // hidden
		{[]string{"-"}, "-endpoint -h -o -timeout"},
		{[]string{"-o", ""}, "json table yaml"},
		{[]string{"-o", "j"}, "json"},
		{[]string{"-endpoint", ""}, completeFiles},
		{[]string{"-o", "json", "-timeout", "5s", "ima"}, "imagefsinfo images"},
		{[]string{"runp", ""}, completeFiles},
		{[]string{"create", "-f", ""}, completeFiles},
		{[]string{"run", "-v", ""}, completeFiles},
		{[]string{"version", ""}, ""},
		{[]string{"logs", "abc", ""}, ""}, // logs takes one container
		// A flag's value is told from an argument.
		{[]string{"runp", "-r", "runc", ""}, completeFiles},
		{[]string{"exec", "-timeout", ""}, ""},
		{[]string{"exec", "-i", "-timeout=5", "abc", ""}, ""}, // then CMD
		{[]string{"run", "-pull", ""}, "always missing never"},
		{[]string{"ps", "-state", "r"}, "running"},
		{[]string{"pods", "-label", "a=b", "-state", ""}, "notready ready"},
		{[]string{"run", "-e", "A=B", "-v", ""}, completeFiles},
		{[]string{"run", "--", "-v", ""}, ""}, // an argument, not a flag
	} {
		c := &cli{endpoint: "unix:///nonexistent/berth.sock"}
		got := strings.Join(complete(c, tc.words), " ")
		if got != tc.want {
			t.Errorf("complete(%q) = %q, want %q", tc.words, got, tc.want)
		}
	}
}

// flagValues lists exactly the flags that take a value, as each
// command's -h shows them.
func TestFlagValuesMatchCommands(t *testing.T) {
	c := &cli{endpoint: "unix:///nonexistent/berth.sock", timeout: time.Second}
	if err := c.connect(); err != nil {
		t.Fatal(err)
	}
	defer c.conn.Close()
	// PrintDefaults writes "  -name TYPE" for a flag with a value and
	// "  -name" then a tab or newline for a boolean.
	line := regexp.MustCompile(`^  -(\S+)( \S+)?`)
	for name, cmd := range commands {
		if name == completeCommand {
			continue
		}
		help := captureStderr(t, func() { cmd.run(c, []string{"-h"}) })
		var got []string
		sc := bufio.NewScanner(strings.NewReader(help))
		for sc.Scan() {
			if m := line.FindStringSubmatch(sc.Text()); m != nil && m[2] != "" {
				got = append(got, m[1])
			}
		}
		var want []string
		for f := range flagValues[name] {
			want = append(want, f)
		}
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: flags with values %q, flagValues has %q", name, got, want)
		}
	}
}

func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	out := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	defer func() { os.Stderr = saved }()
	f()
	w.Close()
	return <-out
}
