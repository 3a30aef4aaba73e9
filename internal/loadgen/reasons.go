package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
)

// maxReasons bounds the distinct failure reasons a run keeps; further
// distinct ones are counted under otherReason.
const maxReasons = 10

const otherReason = "other reasons"

// Reason is one distinct cause of a run's failures and how often it occurred.
type Reason struct {
	Error string `json:"error"`
	Count int64  `json:"count"`
}

// reasons collects why streams or requests failed: each simulated agent
// logs a warning or error when its stream breaks or the hub refuses it, and
// each failed remote-write request reports its error. Safe for concurrent
// use.
type reasons struct {
	mu     sync.Mutex       // protects counts and order
	counts map[string]int64 // by reason; at most maxReasons+1 keys
	order  []string         // keys of counts in the order first seen
}

func newReasons() *reasons { return &reasons{counts: map[string]int64{}} }

func (r *reasons) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.counts[reason]; !ok {
		if len(r.order) >= maxReasons {
			reason = otherReason
		}
		if _, ok := r.counts[reason]; !ok {
			r.order = append(r.order, reason)
		}
	}
	r.counts[reason]++
}

// list returns the reasons, most frequent first (first seen on a tie).
func (r *reasons) list() []Reason {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Reason, 0, len(r.order))
	for _, k := range r.order {
		out = append(out, Reason{Error: k, Count: r.counts[k]})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return out
}

// handler returns a slog.Handler for the agent of machine that records
// every warning or error as a reason: its message and its "err" attribute,
// with the machine id replaced by "<machine>" so that machines failing
// for the same cause count as one reason.
func (r *reasons) handler(machine string) slog.Handler {
	return reasonHandler{r: r, machine: machine}
}

type reasonHandler struct {
	r       *reasons
	machine string
	err     string // "err" attribute added by WithAttrs
}

func (h reasonHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h reasonHandler) Handle(_ context.Context, rec slog.Record) error {
	err := h.err
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			err = a.Value.String()
			return false
		}
		return true
	})
	reason := rec.Message
	if err != "" {
		reason += ": " + err
	}
	if h.machine != "" {
		reason = strings.ReplaceAll(reason, h.machine, "<machine>")
	}
	h.r.add(reason)
	return nil
}

func (h reasonHandler) WithAttrs(as []slog.Attr) slog.Handler {
	for _, a := range as {
		if a.Key == "err" {
			h.err = a.Value.String()
		}
	}
	return h
}

func (h reasonHandler) WithGroup(string) slog.Handler { return h }

// Err reports a run that had errors: nil when Errors is 0, else an error
// naming the count and the reasons, most frequent first, one per line.
func (s Summary) Err() error {
	if s.Errors == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d failed streams or requests", s.Errors)
	if len(s.ErrorReasons) == 0 {
		b.WriteString(" (no reason recorded)")
	}
	for _, r := range s.ErrorReasons {
		fmt.Fprintf(&b, "\n  %d× %s", r.Count, r.Error)
	}
	return errors.New(b.String())
}
