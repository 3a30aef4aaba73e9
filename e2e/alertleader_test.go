package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/notify"
	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// TestPostgresAlertLeader: three hub processes on one PostgreSQL database
// with --alerts-leader-election, each sent the same machine's samples
// (HTTP ingest to every hub, as the NATS bus would show every hub every
// machine). One rule with a webhook notifier: the webhook (a real HTTP
// server in the test) gets exactly one message per transition, also when
// the leader is SIGKILLed right after the value crossed back, and a
// follower lists the leader's alert.
func TestPostgresAlertLeader(t *testing.T) {
	t.Parallel()
	const password = "e2e-leader-admin-pw"
	usePostgres(t, password)
	var hubs []*hubProc
	for range 3 {
		hubs = append(hubs, startHub(t, t.TempDir(), "", "", "--alerts-leader-election", "--alerts-defaults=false", "--alerts-group-wait", "300ms"))
	}
	api := newAlertsClient(t, hubs[0], password)

	var recv struct {
		mu   sync.Mutex
		got  []string // "machine state" per alert delivered
		last time.Time
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p notify.WebhookPayload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		recv.mu.Lock()
		defer recv.mu.Unlock()
		for _, a := range p.Alerts {
			recv.got = append(recv.got, a.Machine+" "+a.State)
		}
		recv.last = time.Now()
	}))
	t.Cleanup(srv.Close)
	delivered := func() []string {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		return append([]string(nil), recv.got...)
	}

	var notifier struct {
		ID string `json:"id"`
	}
	api.must(201, "POST", "/api/notifiers", map[string]any{"name": "hook", "type": "webhook", "url": srv.URL}, &notifier)
	var rule struct {
		ID string `json:"id"`
	}
	api.must(201, "POST", "/api/rules", map[string]any{
		"name": "hot", "metric": "temperature_celsius", "op": ">", "threshold": 50, "for": "0s",
		"machines": []string{"sensor-1"}, "notifiers": []string{notifier.ID},
	}, &rule)

	// Every hub gets the same samples, every 200 ms, until the test ends.
	var value atomic.Uint64
	value.Store(math.Float64bits(20))
	var dead [3]atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	feeding := make(chan struct{})
	go func() {
		defer close(feeding)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			sample := []ingestSample{{Name: "temperature_celsius", Value: math.Float64frombits(value.Load())}}
			for i, h := range hubs {
				if !dead[i].Load() {
					_ = ingest(t, h, "sensor-1", sample) // a dying hub's errors: the deliveries tell
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-feeding })

	waitDelivered := func(want ...string) {
		t.Helper()
		testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("webhook deliveries %v", want), func() error {
			if got := delivered(); strings.Join(got, ",") != strings.Join(want, ",") {
				return fmt.Errorf("delivered %v", got)
			}
			return nil
		})
		time.Sleep(2 * time.Second) // nothing more arrives
		if got := delivered(); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("delivered %v after settling, want %v", got, want)
		}
	}
	value.Store(math.Float64bits(60))
	waitDelivered("sensor-1 firing")

	leader := -1
	for i, h := range hubs {
		if leaderGauge(t, h) == 1 {
			if leader >= 0 {
				t.Fatalf("hubs %d and %d both lead", leader, i)
			}
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no hub reports sysmonstm_alert_leader 1")
	}
	follower := hubs[(leader+1)%3]
	var list []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	newAlertsClient(t, follower, password).must(200, "GET", "/api/alerts?rule="+rule.ID, nil, &list)
	if len(list) != 1 || list[0].State != "firing" {
		t.Fatalf("follower lists %+v", list)
	}

	// The value crosses back; the leader dies before or while it notifies.
	value.Store(math.Float64bits(10))
	time.Sleep(250 * time.Millisecond)
	killed := time.Now()
	dead[leader].Store(true)
	hubs[leader].kill(syscall.SIGKILL)
	waitDelivered("sensor-1 firing", "sensor-1 resolved")
	recv.mu.Lock()
	t.Logf("leader SIGKILLed: resolution delivered by the new leader %s later", recv.last.Sub(killed).Round(time.Millisecond))
	recv.mu.Unlock()
	n := 0
	for i, h := range hubs {
		if i != leader && leaderGauge(t, h) == 1 {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d surviving hubs lead, want 1", n)
	}
}

// leaderGauge reads sysmonstm_alert_leader from hub's /metrics.
func leaderGauge(t *testing.T, h *hubProc) float64 {
	t.Helper()
	resp, err := http.Get("http://" + h.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var v float64
		if _, err := fmt.Sscanf(sc.Text(), "sysmonstm_alert_leader %g", &v); err == nil {
			return v
		}
	}
	t.Fatalf("no sysmonstm_alert_leader in %s's /metrics (status %d)", h.http, resp.StatusCode)
	return 0
}
