// Package testutil holds what tests across sysmonstm share: polling for a
// condition with a deadline, an in-memory listener for tests that run
// servers inside a testing/synctest bubble, and building the binary for
// process-level tests. Only _test.go files import it.
package testutil

import (
	"errors"
	"testing"
	"time"
)

// Poll intervals of WaitFor: the first retry comes after pollFirst, each
// later one after twice the last, at most pollMax.
const (
	pollFirst = 5 * time.Millisecond
	pollMax   = 100 * time.Millisecond
)

// WaitFor calls f until it returns nil, and fails the test with what and
// f's last error when timeout passes first. It polls after 5 ms, then
// doubling, at most every 100 ms, so a condition that holds soon is seen
// soon and a slow one (an HTTP probe of a starting process) is not
// hammered. The timeout is a bound on a broken run, not a measurement:
// nothing may assert how long WaitFor took.
func WaitFor(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := pollFirst
	for {
		err := f()
		if err == nil {
			return
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, pollMax)
	}
}

// Until is WaitFor for a condition without an error to report.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	WaitFor(t, timeout, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

// errNotYet is Until's error while its condition is false.
var errNotYet = errors.New("condition still false")
