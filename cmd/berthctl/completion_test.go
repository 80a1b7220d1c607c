package main

import (
	"strings"
	"testing"
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
	} {
		c := &cli{endpoint: "unix:///nonexistent/berth.sock"}
		got := strings.Join(complete(c, tc.words), " ")
		if got != tc.want {
			t.Errorf("complete(%q) = %q, want %q", tc.words, got, tc.want)
		}
	}
}
