package main

import (
	"testing"

	"github.com/berth-cri/berth/test/verdict"
)

// The lane's expected list parses, and every reason is one this lane
// allows, so a bad line fails here rather than after a long run.
func TestExpectedListParses(t *testing.T) {
	if _, err := verdict.ReadExpected("expected-failures.txt", reasons); err != nil {
		t.Fatal(err)
	}
}
