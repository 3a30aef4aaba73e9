package live

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestRunMarksSilentMachinesOffline runs Run in a synctest bubble, so its
// once-a-second sweep ticks on fake time: a machine that sends nothing
// stays online while it is OfflineAfter old, goes offline at the first
// sweep after that, and the change goes out as a machine event at once.
func TestRunMarksSilentMachinesOffline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New(Options{OfflineAfter: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		s.Connect(MachineInfo{ID: "a", IntervalMs: 1000})
		s.Update("a", time.Now().UnixMilli(), []*Series{NewSeries("x", nil)}, []float64{1})
		sub := s.Subscribe(16)
		defer sub.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}()

		began := time.Now()
		time.Sleep(5 * time.Second) // sweeps at 1 s … 5 s: not older than 5 s
		synctest.Wait()
		if m, _ := s.Machine("a"); !m.Online {
			t.Fatal("offline while not older than OfflineAfter")
		}
		if n := len(sub.C()); n != 0 {
			t.Fatalf("%d events while the machine stayed online", n)
		}
		ev := <-sub.C()
		if ev.Type != EventMachine || ev.Machine != "a" || !strings.Contains(string(ev.JSON), `"online":false`) {
			t.Fatalf("event %s %s, want machine a offline", ev.Type, ev.JSON)
		}
		if d := time.Since(began); d != 6*time.Second {
			t.Fatalf("offline after %v, want the sweep at 6s", d)
		}
		if m, _ := s.Machine("a"); m.Online {
			t.Fatal("still online after the event")
		}
	})
}
