package e2e

import (
	"testing"
	"time"
)

// waitFor polls cond until it holds, failing the test after a minute.
// A minute, not less: it is a ceiling against hangs, not a timing assertion.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
