package testutil

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fatalTB records Fatalf instead of failing the test; like testing.T it
// ends the calling goroutine.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

// run calls fn with a fatalTB on its own goroutine and returns the Fatalf
// message ("" if fn returned).
func run(t *testing.T, fn func(tb testing.TB)) string {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); fn(f) }()
	<-done
	return f.msg
}

func TestWaitFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Holds after a while: returns once it does, polling with backoff.
		calls := 0
		began := time.Now()
		msg := run(t, func(tb testing.TB) {
			WaitFor(tb, time.Second, "third call", func() error {
				if calls++; calls < 3 {
					return errors.New("not yet")
				}
				return nil
			})
		})
		if msg != "" || calls != 3 {
			t.Fatalf("msg %q after %d calls", msg, calls)
		}
		if d := time.Since(began); d != pollFirst+2*pollFirst {
			t.Fatalf("polled for %v, want 5 ms then 10 ms", d)
		}

		// Never holds: fails at the timeout with what and the last error.
		began = time.Now()
		msg = run(t, func(tb testing.TB) {
			WaitFor(tb, 2*time.Second, "the moon", func() error { return errors.New("still cheese") })
		})
		if !strings.Contains(msg, "timed out after 2s waiting for the moon: still cheese") {
			t.Fatalf("msg %q", msg)
		}
		if d := time.Since(began); d < 2*time.Second || d > 2*time.Second+pollMax {
			t.Fatalf("gave up after %v, want 2s", d)
		}

		msg = run(t, func(tb testing.TB) { Until(tb, time.Second, "never", func() bool { return false }) })
		if !strings.Contains(msg, "waiting for never: condition still false") {
			t.Fatalf("Until msg %q", msg)
		}
	})
}

// TestPipeListener serves HTTP on a PipeListener inside a bubble, and
// checks that a peer that reads nothing stalls a write until a deadline in
// fake time.
func TestPipeListener(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := NewPipeListener()
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello "+r.Host)
		})}
		served := make(chan error, 1)
		go func() { served <- hs.Serve(ln) }()
		tr := &http.Transport{DialContext: ln.Dial}
		res, err := (&http.Client{Transport: tr}).Get("http://app.test/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(body) != "hello app.test" {
			t.Fatalf("body %q", body)
		}
		tr.CloseIdleConnections()
		hs.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
		if _, err := ln.Dial(t.Context(), "", ""); err == nil {
			t.Fatal("Dial after Close succeeded")
		}

		// A stalled write ends at its deadline, in fake time.
		ln = NewPipeListener()
		accepted := make(chan struct{})
		go func() {
			c, err := ln.Accept()
			if err == nil {
				defer c.Close()
				<-accepted // reads nothing
			}
		}()
		c, err := ln.Dial(t.Context(), "", "")
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		c.SetWriteDeadline(began.Add(3 * time.Second))
		if _, err := c.Write([]byte("x")); err == nil {
			t.Fatal("write to a peer that reads nothing succeeded")
		}
		if d := time.Since(began); d != 3*time.Second {
			t.Fatalf("write gave up after %v, want 3s", d)
		}
		close(accepted)
		c.Close()
		ln.Close()
	})
}
