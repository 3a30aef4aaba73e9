package live

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestReusedEventBuffersNeverChangeAQueuedEvent publishes from several
// machines at once to subscribers that release at once, late, after
// coalescing, never, or close in the middle: every event a subscriber
// reads must still be the one published (all values equal the batch's
// timestamp), which fails if a buffer went back to the pool while a
// subscriber still held it. Run it with -race too.
func TestReusedEventBuffersNeverChangeAQueuedEvent(t *testing.T) {
	s, _ := newState(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pubs sync.WaitGroup
	for w := range 4 {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			id := fmt.Sprintf("m%d", w)
			s.Connect(MachineInfo{ID: id})
			n := 5 + 40*w // events of different sizes share the pool
			sr := make([]*Series, n)
			vals := make([]float64, n)
			for i := range sr {
				sr[i] = cpu(fmt.Sprint(i))
			}
			for ts := int64(1); ctx.Err() == nil; ts++ {
				for i := range vals {
					vals[i] = float64(ts)
				}
				s.Update(id, ts, sr, vals)
			}
		}()
	}
	check := func(ev Event) error {
		if ev.Type != EventMetrics {
			return nil
		}
		var m struct {
			Machine string `json:"machine"`
			Ts      int64  `json:"ts"`
			Metrics []struct {
				Value float64 `json:"value"`
			} `json:"metrics"`
		}
		if err := json.Unmarshal(ev.JSON, &m); err != nil {
			return fmt.Errorf("event %q: %v", ev.JSON, err)
		}
		if m.Machine != ev.Machine || len(m.Metrics) == 0 {
			return fmt.Errorf("event of %s reads %s with %d values", ev.Machine, m.Machine, len(m.Metrics))
		}
		for _, v := range m.Metrics {
			if v.Value != float64(m.Ts) {
				return fmt.Errorf("event of %s at %d holds value %v: its buffer was reused", m.Machine, m.Ts, v.Value)
			}
		}
		return nil
	}
	errs := make(chan error, 16)
	var subs sync.WaitGroup
	consume := func(queue int, release bool, delay time.Duration, closeAfter int) {
		defer subs.Done()
		sub := s.Subscribe(queue)
		defer sub.Close()
		var held []Event
		for read := 0; ctx.Err() == nil; read++ {
			if closeAfter > 0 && read == closeAfter {
				return // events left queued are the collector's
			}
			var ev Event
			select {
			case ev = <-sub.C():
			case <-ctx.Done():
				return
			}
			if delay > 0 {
				time.Sleep(time.Duration(rand.Int64N(int64(delay))))
			}
			if err := check(ev); err != nil {
				errs <- err
				return
			}
			if release {
				ev.Release()
			} else if len(held) < 64 {
				held = append(held, ev)
			}
		}
		for _, ev := range held { // a holder that never releases keeps its events intact
			if err := check(ev); err != nil {
				errs <- err
				return
			}
		}
	}
	subs.Add(5)
	go consume(256, true, 0, 0)                   // keeps up, releases at once
	go consume(4, true, 200*time.Microsecond, 0)  // falls behind: coalesced backlog
	go consume(4, false, 100*time.Microsecond, 0) // never releases
	go consume(16, true, 0, 500)                  // closes with events queued
	go func() {                                   // subscribes and closes over and over
		defer subs.Done()
		for ctx.Err() == nil {
			sub := s.Subscribe(2)
			for range 3 {
				select {
				case ev := <-sub.C():
					if err := check(ev); err != nil {
						errs <- err
						return
					}
					ev.Release()
				case <-time.After(time.Millisecond):
				}
			}
			sub.Close()
		}
	}()
	select {
	case err := <-errs:
		t.Error(err)
	case <-time.After(time.Second):
	}
	cancel()
	pubs.Wait()
	subs.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestMetricsEventsReuseMemory: with a subscriber that releases what it
// writes, as the WebSocket writer does, a batch's metrics event costs no
// allocation once the pool is warm.
func TestMetricsEventsReuseMemory(t *testing.T) {
	s, _ := newState(t, Options{})
	s.Connect(MachineInfo{ID: "m"})
	sr := make([]*Series, 100)
	vals := make([]float64, 100)
	for i := range sr {
		sr[i] = cpu(fmt.Sprint(i))
		vals[i] = float64(i) * 1.25
	}
	sub := s.Subscribe(4)
	defer sub.Close()
	ts := int64(0)
	step := func() {
		ts++
		s.Update("m", ts, sr, vals)
		ev := <-sub.C()
		ev.Release()
	}
	step()
	if allocs := testing.AllocsPerRun(200, step); allocs > 0 {
		t.Fatalf("%v allocations per batch with a releasing subscriber, want 0", allocs)
	}
}
