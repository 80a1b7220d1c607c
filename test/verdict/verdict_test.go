package verdict

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A ginkgo JUnit report in the shape critest writes: passed, failed,
// skipped by the spec, left out by the focus, and a suite node.
const sampleJUnit = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="5" failures="2">
  <testsuite name="CRI validation" tests="5">
    <testcase name="[BeforeSuite]" status="passed" time="0.1"></testcase>
    <testcase name="[It] [k8s.io] A passes" status="passed" time="1.5"></testcase>
    <testcase name="[It] [k8s.io] B fails" status="failed" time="2">
      <failure message="failed to exec&#xA;Unexpected error:&#xA;    &lt;*status.Error | 0xc0&gt;: &#xA;    rpc error: code = Unimplemented desc = method Exec not implemented&#xA;    { s: {} }" type="failed">detail</failure>
    </testcase>
    <testcase name="[It] [k8s.io] C listed fails [Serial]" status="failed" time="1">
      <failure message="boom" type="failed"></failure>
    </testcase>
    <testcase name="[It] [k8s.io] D skips itself" status="skipped" time="0">
      <skipped message="skipped - AppArmor is disabled on this host"></skipped>
    </testcase>
    <testcase name="[It] [k8s.io] E benchmark" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
  </testsuite>
</testsuites>
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadJUnit(t *testing.T) {
	rs, err := ReadJUnit(writeFile(t, "junit.xml", sampleJUnit))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Result{}
	for _, r := range rs {
		got[r.Name] = r
	}
	if len(rs) != 5 {
		t.Fatalf("want 5 specs (suite nodes that pass are not specs), got %d: %+v", len(rs), rs)
	}
	if r := got["[k8s.io] B fails"]; r.Status != "failed" ||
		r.Reason != "failed to exec: rpc error: code = Unimplemented desc = method Exec not implemented" {
		t.Errorf("B: %+v", r)
	}
	if r := got["[k8s.io] D skips itself"]; r.Status != "skipped" || r.NotRun || r.Reason != "AppArmor is disabled on this host" {
		t.Errorf("D: %+v", r)
	}
	if r := got["[k8s.io] E benchmark"]; !r.NotRun {
		t.Errorf("E should count as not selected: %+v", r)
	}
	if r := got["[k8s.io] A passes"]; r.Time != 1500*time.Millisecond {
		t.Errorf("A time: %v", r.Time)
	}
}

// The reasons critest's list allows.
var critestReasons = []string{"kernel:", "offline:", "issue:", "runtime:"}

func TestReadExpectedRejectsOtherReasons(t *testing.T) {
	for _, bad := range []string{
		"[k8s.io] X | flaky on my laptop\n",
		"[k8s.io] X without a reason\n",
		"[k8s.io] X | kernel: no AppArmor\n[k8s.io] X | kernel: twice\n",
	} {
		if _, err := ReadExpected(writeFile(t, "e.txt", bad), critestReasons); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	e, err := ReadExpected(writeFile(t, "e.txt", "# comment\n\n[k8s.io] a | b | issue: Streaming\n"), critestReasons)
	if err != nil {
		t.Fatal(err)
	}
	if e["[k8s.io] a | b"].Reason != "issue: Streaming" {
		t.Errorf("the last \" | \" splits name from reason: %+v", e)
	}
}

func TestVerdict(t *testing.T) {
	rs, err := ReadJUnit(writeFile(t, "junit.xml", sampleJUnit))
	if err != nil {
		t.Fatal(err)
	}
	expected, err := ReadExpected(writeFile(t, "e.txt",
		"[k8s.io] C listed fails [Serial] | issue: Streaming\n"+
			"[k8s.io] A passes | issue: Stats\n"+
			"[k8s.io] Gone | offline: digest\n"), critestReasons)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	problems := Judge(&out, rs, expected, true)
	want := []string{"FAILED: [k8s.io] B fails", "SKIPPED but not listed: [k8s.io] D skips itself",
		"PASSES NOW", "listed but not run by the suite (line 3): [k8s.io] Gone"}
	joined := strings.Join(problems, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("problems lack %q:\n%s", w, joined)
		}
	}
	if len(problems) != len(want) {
		t.Errorf("want %d problems, got %d:\n%s", len(want), len(problems), joined)
	}
	// E was not selected: not counted as skipped.
	if !strings.HasSuffix(out.String(), "1 passed, 2 failed, 1 skipped\n") {
		t.Errorf("closing line:\n%s", out.String())
	}
	// A focused run does not complain about listed specs it did not run.
	if p := Judge(&strings.Builder{}, rs, expected, false); len(p) != 3 {
		t.Errorf("focused run: %v", p)
	}
}
