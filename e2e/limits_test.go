package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// TestHostileInputIsRefusedAndCounted: a hub with tight limits gets a
// stream defining too many series, a message over the size limit, a stream
// that skips its hello, an oversized and a malformed HTTP ingest body. Each
// is refused with a clear error and counted by reason in /metrics, while a
// real agent on the same hub keeps streaming undisturbed.
func TestHostileInputIsRefusedAndCounted(t *testing.T) {
	t.Parallel()
	hub := startHub(t, t.TempDir(), "", "", "--max-series-per-machine", "5000",
		"--max-message-bytes", "65536", "--max-body-bytes", "2048")
	startAgent(t, hub, "steady", "--interval", "250ms")
	var m machine
	testutil.WaitFor(t, 20*time.Second, "steady online", func() error {
		if getJSON(t, "http://"+hub.http+"/api/machines/steady", &m) != 200 || !m.Online {
			return fmt.Errorf("not online yet")
		}
		return nil
	})

	conn, err := grpc.NewClient(hub.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewIngestClient(conn)
	// stream opens a stream, sends msgs and returns how it ended.
	stream := func(msgs ...*pb.AgentMessage) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := client.Stream(ctx)
		if err != nil {
			return err
		}
		for _, msg := range msgs {
			if err := s.Send(msg); err != nil {
				break // the hub closed the stream; Recv says why
			}
		}
		for {
			if _, err := s.Recv(); err != nil {
				return err
			}
		}
	}
	hello := func(id string) *pb.AgentMessage {
		return &pb.AgentMessage{Msg: &pb.AgentMessage_Hello{Hello: &pb.Hello{
			MachineId: id, Hostname: id, Token: hub.token, Instance: uint64(time.Now().UnixNano()), IntervalMs: 1000,
		}}}
	}
	expect := func(what string, err error, code codes.Code, text string) {
		t.Helper()
		if status.Code(err) != code || !strings.Contains(err.Error(), text) {
			t.Errorf("%s: got %v, want %s containing %q", what, err, code, text)
		}
	}

	defs := make([]*pb.SeriesDef, 5001)
	for i := range defs {
		defs[i] = &pb.SeriesDef{Id: uint32(i), Name: "m", Labels: []*pb.Label{{Name: "i", Value: fmt.Sprint(i)}}}
	}
	// 5001 small defs in chunks under the message limit.
	var msgs []*pb.AgentMessage
	for i := 0; i < len(defs); i += 1000 {
		msgs = append(msgs, &pb.AgentMessage{Msg: &pb.AgentMessage_Series{Series: &pb.SeriesDefs{Series: defs[i:min(i+1000, len(defs))]}}})
	}
	expect("too many series", stream(append([]*pb.AgentMessage{hello("greedy")}, msgs...)...), codes.ResourceExhausted, "series per stream")

	huge := &pb.AgentMessage{Msg: &pb.AgentMessage_Series{Series: &pb.SeriesDefs{Series: []*pb.SeriesDef{
		{Id: 0, Name: "m", Labels: []*pb.Label{{Name: "blob", Value: strings.Repeat("x", 100_000)}}},
	}}}}
	expect("oversized message", stream(hello("blob"), huge), codes.ResourceExhausted, "larger than max")

	batchFirst := &pb.AgentMessage{Msg: &pb.AgentMessage_Batch{Batch: &pb.Batch{Seq: 1, TimestampMs: time.Now().UnixMilli()}}}
	expect("no hello", stream(batchFirst), codes.InvalidArgument, "first message must be a hello")

	post := func(body string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+hub.http+"/api/v1/ingest", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+hub.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var e struct{ Error string }
		_ = json.Unmarshal(b, &e)
		return resp.StatusCode, e.Error
	}
	big := `{"machine":"steady","metrics":[` + strings.Repeat(`{"name":"a","value":1},`, 200) + `{"name":"a","value":1}]}`
	if code, msg := post(big); code != 413 || !strings.Contains(msg, "larger than 2048 bytes") {
		t.Errorf("oversized body: %d %q", code, msg)
	}
	if code, msg := post(`{"machine":"steady","metrics":[{"name":`); code != 400 || msg == "" {
		t.Errorf("malformed body: %d %q", code, msg)
	}

	metrics := "http://" + hub.http + "/metrics"
	for reason, want := range map[string]float64{"too_many_series": 1, "too_large": 2, "malformed": 2} {
		if v := promValue(t, metrics, `sysmonstm_rejected_requests_total{reason="`+reason+`"}`); v < want {
			t.Errorf("rejected %s = %v, want ≥ %v", reason, v, want)
		}
	}
	// The real agent kept streaming throughout.
	before := m.LastSeen
	testutil.WaitFor(t, 10*time.Second, "steady still streaming", func() error {
		if getJSON(t, "http://"+hub.http+"/api/machines/steady", &m) != 200 || !m.Online || m.LastSeen == before {
			return fmt.Errorf("last_seen %v, online %v", m.LastSeen, m.Online)
		}
		return nil
	})
	for _, id := range []string{"greedy", "blob"} {
		var other machine
		if code := getJSON(t, "http://"+hub.http+"/api/machines/"+id, &other); code == 200 && other.Online && len(other.Metrics) > 0 {
			t.Errorf("%s: refused stream left %d values", id, len(other.Metrics))
		}
	}
}

// TestSeriesBombsAreBounded: HTTP ingest of ever new label values for one
// machine (issue #12: 480 k series, 1.1 GB) stops at the machine's series
// cap with 429, the count survives a hub restart, a new agent process of the
// capped machine is refused, and the machine object carries at most
// --max-live-series-per-machine series.
func TestSeriesBombsAreBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := []string{"--max-series-per-machine", "1000", "--max-live-series-per-machine", "200"}
	hub := startHub(t, dir, "", "", args...)
	post := func(hub *hubProc, from, n int) (int, map[string]any) {
		var b strings.Builder
		b.WriteString(`{"machine":"bomb","metrics":[`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"bomb_metric","labels":{"v":"%d"},"value":1}`, from+i)
		}
		b.WriteString("]}")
		req, _ := http.NewRequest("POST", "http://"+hub.http+"/api/v1/ingest", strings.NewReader(b.String()))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+hub.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}
	if code, out := post(hub, 0, 600); code != 200 || out["accepted"] != 600.0 {
		t.Fatalf("first 600: %d %v", code, out)
	}
	if code, out := post(hub, 600, 600); code != 200 || out["accepted"] != 400.0 || out["rejected"] != 200.0 {
		t.Fatalf("600 more under a cap of 1000: %d %v", code, out)
	}
	if code, out := post(hub, 1200, 600); code != 429 || !strings.Contains(fmt.Sprint(out["error"]), "limit per machine") {
		t.Fatalf("over the cap: %d %v", code, out)
	}
	var m struct {
		Metrics   []json.RawMessage `json:"metrics"`
		Truncated bool              `json:"metrics_truncated"`
	}
	if code := getJSON(t, "http://"+hub.http+"/api/machines/bomb", &m); code != 200 || len(m.Metrics) != 200 || !m.Truncated {
		t.Fatalf("machine object: %d, %d series, truncated %v", code, len(m.Metrics), m.Truncated)
	}
	metrics := "http://" + hub.http + "/metrics"
	if v := promValue(t, metrics, `sysmonstm_refused_series_total{limit="max_series_per_machine"}`); v != 800 {
		t.Errorf("refused series = %v, want 800", v)
	}
	if v := promValue(t, metrics, `sysmonstm_active_series`); v != 1000 {
		t.Errorf("active series = %v, want 1000", v)
	}

	hub.kill(syscall.SIGTERM)
	hub = startHub(t, dir, "", "", args...)
	if code, out := post(hub, 5000, 1); code != 429 {
		t.Fatalf("a new series after a restart: %d %v, want 429", code, out)
	}
	if code, out := post(hub, 0, 10); code != 200 || out["accepted"] != 10.0 {
		t.Fatalf("known series after a restart: %d %v", code, out)
	}
	// An agent process for the capped machine cannot start a stream: its
	// sequence series would be a new series.
	conn, err := grpc.NewClient(hub.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := pb.NewIngestClient(conn).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&pb.AgentMessage{Msg: &pb.AgentMessage_Hello{Hello: &pb.Hello{
		MachineId: "bomb", Hostname: "bomb", Token: hub.token, Instance: 99, IntervalMs: 1000}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "series limit") {
		t.Fatalf("stream of a capped machine: %v, want ResourceExhausted", err)
	}
}

// TestSeriesBombMemory replays the hardening issue's HTTP series bomb with
// the default caps: 12 posts of 40,000 new label values for one machine,
// then 20 dashboard connects each reading its /ws snapshot. It logs the
// hub's peak RSS and what one reader pays, and holds them to the bounds in
// docs/security.md ("What one machine can cost"): the machine stops at
// --max-series-per-machine (100,000 series) and one snapshot carries at most
// --max-live-series-per-machine (10,000) of its series. Before the caps the
// same run took the hub to 823 MiB and every snapshot to 36.9 MB.
func TestSeriesBombMemory(t *testing.T) {
	hub := startHub(t, t.TempDir(), "", "")
	base := peakRSSMiB(t, hub.cmd.Process.Pid)
	codes := map[int]int{}
	for p := range 12 {
		var b strings.Builder
		b.WriteString(`{"machine":"bomb","metrics":[`)
		for i := range 40_000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"bomb_metric","labels":{"v":"%d"},"value":1}`, p*40_000+i)
		}
		b.WriteString("]}")
		req, _ := http.NewRequest("POST", "http://"+hub.http+"/api/v1/ingest", strings.NewReader(b.String()))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+hub.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	if codes[200] != 3 || codes[429] != 9 {
		t.Errorf("answers %v: want 3 × 200 (100,000 series taken) and 9 × 429", codes)
	}
	afterBomb := peakRSSMiB(t, hub.cmd.Process.Pid)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var snapshot int
	for range 20 {
		c, _, err := websocket.Dial(ctx, "ws://"+hub.http+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadLimit(64 << 20)
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		snapshot = max(snapshot, len(msg))
		c.Close(websocket.StatusNormalClosure, "")
	}
	peak := peakRSSMiB(t, hub.cmd.Process.Pid)
	t.Logf("hub peak RSS %.0f MiB at start, %.0f MiB after 12 × 40,000 new series (%v), %.0f MiB after 20 dashboard connects; largest /ws snapshot %d bytes",
		base, afterBomb, codes, peak, snapshot)
	if snapshot > 2<<20 {
		t.Errorf("a /ws snapshot is %d bytes: one machine must add at most about 1 MB", snapshot)
	}
	if peak > 600 {
		t.Errorf("hub peak RSS %.0f MiB: the caps bound it near 300 MiB (823 MiB before them)", peak)
	}
}

// TestMaxMemoryRefusesSeriesBomb gives a real hub a small --max-memory and
// a series bomb over HTTP ingest (the series caps raised out of the way):
// the hub stays alive, refuses new series once its memory passes the
// high-water mark (429 naming memory, counted, logged), and a machine's
// existing series keep being taken.
func TestMaxMemoryRefusesSeriesBomb(t *testing.T) {
	hub := startHub(t, t.TempDir(), "", "", "--max-memory", "160MiB",
		"--max-series-per-machine", "10000000", "--max-active-series", "100000000")
	steady := []byte(`{"machine":"steady","metrics":[{"name":"load1","value":0.5},{"name":"load5","value":0.25}]}`)
	post := func(body []byte) (int, string) {
		t.Helper()
		resp, err := hub.postIngest(body)
		if err != nil {
			t.Fatalf("hub gone: %v (%v)", err, hub.exited())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, out := post(steady); code != 200 {
		t.Fatalf("steady before: %d %s", code, out)
	}
	var refusedAt, code int
	var out string
	for p := range 60 {
		var b strings.Builder
		fmt.Fprintf(&b, `{"machine":"bomb-%d","metrics":[`, p)
		for i := range 40_000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"bomb_metric","labels":{"v":"%d"},"value":1}`, i)
		}
		b.WriteString("]}")
		if code, out = post([]byte(b.String())); code == http.StatusTooManyRequests {
			refusedAt = p
			break
		}
		if code != 200 {
			t.Fatalf("bomb post %d: %d %s", p, code, out)
		}
	}
	if code != http.StatusTooManyRequests || !strings.Contains(out, "memory") || !strings.Contains(out, "high-water mark") {
		t.Fatalf("after %d × 40,000 new series: %d %s; want 429 naming the memory high-water mark", refusedAt, code, out)
	}
	if err := hub.exited(); err != nil {
		t.Fatal(err)
	}
	if code, out := post(steady); code != 200 || !strings.Contains(out, `"accepted":2`) {
		t.Fatalf("existing series over the high-water mark: %d %s", code, out)
	}
	if got := promValue(t, "http://"+hub.http+"/metrics", `sysmonstm_refused_series_total{limit="memory"}`); got < 1 {
		t.Fatalf(`sysmonstm_refused_series_total{limit="memory"} = %v`, got)
	}
	testutil.WaitFor(t, 5*time.Second, "high-water log line", func() error {
		if !strings.Contains(hub.out.String(), "hub memory above its high-water mark") {
			return fmt.Errorf("no log line yet")
		}
		return nil
	})
	t.Logf("refused after %d × 40,000 new series; hub peak RSS %.0f MiB with --max-memory 160MiB", refusedAt, peakRSSMiB(t, hub.cmd.Process.Pid))
}
