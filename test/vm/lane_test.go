package main

import (
	"os/exec"
	"strings"
	"testing"
)

func TestReadResultsSumsResultLines(t *testing.T) {
	in := "lane: === critest\n" +
		"lane-result critest systemd/crun rc=1: 80 passed, 3 failed, 12 skipped\r\n" +
		"not lane-result x rc=0: 1 passed, 0 failed, 0 skipped\n" +
		"lane-result e2e systemd/berth,runc rc=0: 15 passed, 0 failed, 1 skipped\n"
	var out strings.Builder
	rs := readResults(strings.NewReader(in), &out)
	if out.String() != strings.ReplaceAll(in, "\r", "") && out.String() != in {
		t.Errorf("output not copied: %q", out.String())
	}
	want := []laneResult{
		{name: "critest systemd/crun", rc: 1, counts: counts{80, 3, 12}},
		{name: "e2e systemd/berth,runc", rc: 0, counts: counts{15, 0, 1}},
	}
	if len(rs) != len(want) {
		t.Fatalf("results = %+v, want %+v", rs, want)
	}
	for i := range want {
		if rs[i] != want[i] {
			t.Errorf("result %d = %+v, want %+v", i, rs[i], want[i])
		}
	}
}

// The command reaches the guest's bash as the exact argv given.
func TestCommandScriptQuotes(t *testing.T) {
	args := []string{"bash", "-c", `printf '%s|' "$K" "$@"`, "-", "it's", "$HOME", "a b", `"q"`, "`x`"}
	script := commandScript(vmOptions{cmd: args, env: []string{"K=v 'w'=x"}})
	out, err := exec.Command("bash", "-c", script).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := `v 'w'=x|it's|$HOME|a b|"q"|` + "`x`|"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}
