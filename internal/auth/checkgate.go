package auth

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"
)

// Defaults of the password-check gate (HTTPOptions).
const (
	// DefaultPasswordCheckWait is how long a login waits for a free
	// password check.
	DefaultPasswordCheckWait = 2 * time.Second
	// checkQueuePerSlot bounds the logins waiting for a check: this many
	// per concurrent check.
	checkQueuePerSlot = 4
)

// DefaultPasswordChecks is the default bound on concurrent password checks:
// half the CPUs Go may use (GOMAXPROCS), at least 1, so logins leave CPU
// to the rest of the hub. One check at bcrypt cost 12 takes about 200 ms
// of one core.
func DefaultPasswordChecks() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// checkGate bounds concurrent password checks: at most cap(slots) run, at
// most maxQueued logins wait for one, each for at most wait. Waiting
// logins cost a goroutine each, no CPU.
type checkGate struct {
	slots     chan struct{} // one element per check running
	queued    atomic.Int64  // logins waiting for a slot
	maxQueued int64
	wait      time.Duration
}

func newCheckGate(slots int, wait time.Duration) *checkGate {
	return &checkGate{slots: make(chan struct{}, slots), maxQueued: int64(checkQueuePerSlot * slots), wait: wait}
}

// enter takes a slot, waiting for one at most g.wait while fewer than
// g.maxQueued others wait; false: no slot (leave must not be called).
func (g *checkGate) enter(ctx context.Context) bool {
	select {
	case g.slots <- struct{}{}:
		return true
	default:
	}
	if g.queued.Add(1) > g.maxQueued {
		g.queued.Add(-1)
		return false
	}
	defer g.queued.Add(-1)
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// leave frees the slot taken by enter.
func (g *checkGate) leave() { <-g.slots }
