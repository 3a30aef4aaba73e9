package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	sysmonstmv1 "github.com/sysmonstm/sysmonstm/proto/sysmonstm/v1"
)

// maxDefsPerMessage bounds one SeriesDefs message (≈ 100 B per def), far
// below gRPC's default 4 MB message limit.
const maxDefsPerMessage = 1000

// connState is what the connect loop last told the operator.
type connState int

const (
	stateStarting connState = iota
	stateConnected
	stateUnreachable
	stateRejected
)

// connectLoop keeps one stream to a hub up until ctx is done, reconnecting
// with exponential backoff and full jitter, to the hub hubPicker chooses.
func (a *Agent) connectLoop(ctx context.Context) {
	state := stateStarting
	attempt := 0
	for ctx.Err() == nil {
		var began time.Time
		ep, n, err := endpoint{addr: a.opts.Hub}, 1, error(nil) // Options.Conn: the one hub
		if a.opts.Conn == nil {
			ep, n, err = a.picker.pick(ctx, a.now())
		}
		tried := err == nil
		if tried {
			began, err = a.session(ctx, ep, n > 1, &state)
		}
		if ctx.Err() != nil {
			return
		}
		if tried && a.opts.Conn == nil {
			a.picker.failed(ep.addr, a.now())
		}
		a.mu.Lock()
		a.stats.Errors++
		a.mu.Unlock()
		stable := a.stableAfter
		if n > 1 {
			stable = a.failoverStableAfter
		}
		if !began.IsZero() && time.Since(began) >= stable {
			attempt = 0
		}
		delay := a.backoff(attempt)
		attempt++
		hub := ep.String()
		if ep.addr == "" {
			hub = a.opts.Hub // no hub name resolved
		}
		if c := status.Code(err); c == codes.Unauthenticated || c == codes.PermissionDenied {
			if n <= 1 { // with several hubs, another may know the token: the usual backoff
				delay = a.backoffMax
			}
			if state != stateRejected {
				a.log.Error("token rejected by hub; create one with `sysmonstm token create` and pass it with --token", "hub", hub, "err", err)
			}
			state = stateRejected
		} else {
			if state != stateUnreachable {
				a.log.Warn("hub unreachable, retrying", "hub", hub, "hubs", n, "err", err)
			} else {
				a.log.Debug("hub still unreachable", "hub", hub, "err", err, "retry_in", delay)
			}
			state = stateUnreachable
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff returns a full-jitter delay for the given attempt (0-based).
func (a *Agent) backoff(attempt int) time.Duration {
	d := a.backoffMax
	if attempt < 30 {
		d = min(a.backoffBase<<attempt, a.backoffMax)
	}
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

// streamState is one stream's progress, shared by its sender, receiver and
// watchdog goroutines.
type streamState struct {
	acked    atomic.Uint64 // highest seq acked on this stream (or welcome.last_seq)
	sent     atomic.Uint64 // highest seq sent on this stream
	progress atomic.Int64  // unix ns of the last ack, or of a send with nothing in flight

	ackTimeout time.Duration // in-flight batches without an ack for this long break the stream

	once sync.Once
	err  error // first error that ended the stream
	stop context.CancelFunc
}

func (s *streamState) fail(err error) {
	s.once.Do(func() {
		s.err = err
		s.stop()
	})
}

// session runs one stream to ep: connection, hello, welcome, then batches
// until an error. multi says other hubs could take over, which shortens
// the connect and ack timeouts. It returns when the stream was established
// (zero if never) and why it ended.
func (a *Agent) session(ctx context.Context, ep endpoint, multi bool, state *connState) (time.Time, error) {
	conn, closeConn, err := a.dial(ep)
	if err != nil {
		return time.Time{}, err
	}
	defer closeConn()
	client := sysmonstmv1.NewIngestClient(conn)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st := &streamState{stop: cancel, ackTimeout: a.ackTimeout}
	setupTimeout := a.welcomeTimeout
	if multi {
		st.ackTimeout, setupTimeout = a.failoverAckTimeout, a.failoverConnectTimeout
	}

	// Connecting, hello and welcome must all fit in setupTimeout: a hub
	// that accepts TCP but never answers (stopped, overloaded) is left.
	timedOut := atomic.Bool{}
	t := time.AfterFunc(setupTimeout, func() { timedOut.Store(true); cancel() })
	defer t.Stop()
	setupErr := func(what string, err error) error {
		if timedOut.Load() {
			return fmt.Errorf("no welcome from hub within %s", setupTimeout)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	// The token travels as metadata too, so the hub checks it before it
	// reads anything of the stream; the hello keeps it for older hubs.
	octx := sctx
	if a.opts.Token != "" {
		octx = metadata.AppendToOutgoingContext(sctx, "authorization", "Bearer "+a.opts.Token)
	}
	stream, err := client.Stream(octx)
	if err != nil {
		return time.Time{}, setupErr("open stream", err)
	}
	hello := &sysmonstmv1.Hello{
		MachineId:    a.opts.MachineID,
		Hostname:     a.opts.Hostname,
		Labels:       protoLabels(a.opts.Labels),
		Info:         a.opts.Info,
		AgentVersion: a.opts.Version,
		Token:        a.opts.Token,
		Instance:     a.instance,
		IntervalMs:   a.intervalMs.Load(),
	}
	if err := stream.Send(&sysmonstmv1.AgentMessage{Msg: &sysmonstmv1.AgentMessage_Hello{Hello: hello}}); err != nil {
		return time.Time{}, setupErr("send hello", helloErr(stream, err))
	}
	msg, err := stream.Recv()
	if !t.Stop() || err != nil {
		if err == nil {
			err = errors.New("timed out")
		}
		return time.Time{}, setupErr("wait for welcome", err)
	}
	welcome := msg.GetWelcome()
	if welcome == nil {
		return time.Time{}, fmt.Errorf("protocol error: hub sent %T before welcome", msg.GetMsg())
	}
	a.setInterval(welcome.GetSettings().GetIntervalMs())
	began := time.Now()
	lastSeq, replay := a.established(ep, welcome.GetLastSeq())
	if *state != stateConnected {
		a.log.Info("connected to hub", "hub", ep, "replaying_batches", replay)
	}
	*state = stateConnected
	st.acked.Store(lastSeq)
	st.progress.Store(time.Now().UnixNano())
	defer func() {
		a.mu.Lock()
		a.stats.Connected = false
		a.stats.Hub = ""
		a.lastEnd = time.Now()
		a.mu.Unlock()
	}()

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	recvDone := make(chan struct{})
	wg.Go(func() { defer close(recvDone); a.receive(stream, st) })
	wg.Go(func() { a.watchdog(sctx, st) })
	err = a.send(sctx, stream, st)
	if errors.Is(err, io.EOF) { // the hub ended the stream; the receiver learns why
		t := time.NewTimer(time.Second)
		select {
		case <-recvDone:
		case <-t.C:
		}
		t.Stop()
	}
	st.fail(err)
	return began, st.err
}

// established records a new stream to ep whose hub already stored every
// batch up to lastSeq. It returns lastSeq, capped at the last seq made
// here, and how many buffered batches remain to replay.
func (a *Agent) established(ep endpoint, lastSeq uint64) (uint64, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if lastSeq > a.lastPushed {
		a.log.Warn("hub reports a last seq beyond this agent's newest batch; treating every buffered batch as stored", "hub_last_seq", lastSeq, "agent_last_seq", a.lastPushed)
		lastSeq = a.lastPushed
	}
	n, samples := a.buf.popThrough(lastSeq)
	a.stats.Acked += int64(n)
	a.stats.AckedSamples += int64(samples)
	a.streams++
	if a.streams > 1 {
		a.stats.Reconnects++
	}
	if a.lastHub != "" && a.lastHub != ep.addr {
		a.stats.Failovers++
		a.log.Info("failed over to another hub", "from", a.lastHub, "to", ep, "offline_for", time.Since(a.lastEnd).Round(time.Millisecond),
			"replaying_batches", a.buf.len(), "failovers", a.stats.Failovers)
	}
	a.lastHub = ep.addr
	a.stats.Hub = ep.String()
	a.stats.Connected = true
	return lastSeq, a.buf.len()
}

// receive handles acks and settings until the stream ends.
func (a *Agent) receive(stream sysmonstmv1.Ingest_StreamClient, st *streamState) {
	for {
		msg, err := stream.Recv()
		if err != nil {
			st.fail(fmt.Errorf("receive: %w", err))
			return
		}
		switch m := msg.GetMsg().(type) {
		case *sysmonstmv1.HubMessage_Ack:
			a.ack(m.Ack.GetSeq(), st)
		case *sysmonstmv1.HubMessage_Settings:
			a.setInterval(m.Settings.GetIntervalMs())
		case *sysmonstmv1.HubMessage_Welcome:
			a.log.Debug("ignoring repeated welcome from hub")
		}
	}
}

// ack drops every buffered batch with seq <= seq: the hub stored them.
func (a *Agent) ack(seq uint64, st *streamState) {
	for {
		old := st.acked.Load()
		if seq <= old {
			return
		}
		if st.acked.CompareAndSwap(old, seq) {
			break
		}
	}
	st.progress.Store(time.Now().UnixNano())
	a.mu.Lock()
	n, samples := a.buf.popThrough(seq)
	a.stats.Acked += int64(n)
	a.stats.AckedSamples += int64(samples)
	a.mu.Unlock()
	a.signal()
}

// watchdog breaks a stream whose in-flight batches go unacknowledged for
// st.ackTimeout: a silent network cut otherwise looks like a slow hub forever.
func (a *Agent) watchdog(ctx context.Context, st *streamState) {
	tk := time.NewTicker(max(st.ackTimeout/8, time.Millisecond))
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		if st.sent.Load() <= st.acked.Load() {
			continue
		}
		if since := time.Since(time.Unix(0, st.progress.Load())); since > st.ackTimeout {
			st.fail(fmt.Errorf("no ack from hub for %s", since.Round(time.Millisecond)))
			return
		}
	}
}

// send streams buffered batches in seq order, each preceded by the
// SeriesDefs it needs, keeping at most a.window batches unacknowledged.
func (a *Agent) send(ctx context.Context, stream sysmonstmv1.Ingest_StreamClient, st *streamState) error {
	defined := make([]bool, 1) // defined[id]: def sent on this stream
	// Define every series the buffered backlog refers to in one go.
	var ids []uint32
	a.mu.Lock()
	for i := range a.buf.len() {
		for _, id := range a.buf.at(i).SeriesIds {
			if int(id) >= len(defined) {
				defined = append(defined, make([]bool, int(id)+1-len(defined))...)
			}
			if !defined[id] {
				defined[id] = true
				ids = append(ids, id)
			}
		}
	}
	a.mu.Unlock()
	if err := a.sendDefs(stream, ids); err != nil {
		return err
	}

	next := st.acked.Load() + 1
	for {
		if err := a.sendSnapshot(stream); err != nil {
			return err
		}
		a.mu.Lock()
		first, _, ok := a.buf.span()
		if ok && next < first {
			next = first // acked, or dropped on overflow
		}
		b := a.buf.get(next)
		a.mu.Unlock()
		floor := st.acked.Load()
		if ok && first-1 > floor {
			floor = first - 1
		}
		if b == nil || int64(next-1)-int64(floor) >= int64(a.window) {
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-a.wake:
			case <-a.snapWake:
			}
			continue
		}
		ids = ids[:0]
		for _, id := range b.SeriesIds {
			if int(id) >= len(defined) {
				defined = append(defined, make([]bool, int(id)+1-len(defined))...)
			}
			if !defined[id] {
				defined[id] = true
				ids = append(ids, id)
			}
		}
		if err := a.sendDefs(stream, ids); err != nil {
			return err
		}
		if st.sent.Load() <= st.acked.Load() {
			st.progress.Store(time.Now().UnixNano())
		}
		if err := stream.Send(&sysmonstmv1.AgentMessage{Msg: &sysmonstmv1.AgentMessage_Batch{Batch: b}}); err != nil {
			return fmt.Errorf("send batch: %w", err)
		}
		st.sent.Store(next)
		a.mu.Lock()
		if next > a.maxSent {
			a.maxSent = next
			a.stats.Sent++
			a.stats.SentSamples += int64(len(b.SeriesIds))
		} else {
			a.stats.Resent++
		}
		a.mu.Unlock()
		next++
	}
}

// sendDefs sends the definitions of ids in messages of at most
// maxDefsPerMessage.
func (a *Agent) sendDefs(stream sysmonstmv1.Ingest_StreamClient, ids []uint32) error {
	for len(ids) > 0 {
		n := min(len(ids), maxDefsPerMessage)
		defs := make([]*sysmonstmv1.SeriesDef, n)
		a.mu.Lock()
		for i, id := range ids[:n] {
			defs[i] = a.defs[id-1]
		}
		a.mu.Unlock()
		msg := &sysmonstmv1.AgentMessage{Msg: &sysmonstmv1.AgentMessage_Series{Series: &sysmonstmv1.SeriesDefs{Series: defs}}}
		if err := stream.Send(msg); err != nil {
			return fmt.Errorf("send series definitions: %w", err)
		}
		ids = ids[n:]
	}
	return nil
}

// helloErr turns the io.EOF that Send returns when the hub ended the stream
// into the hub's status, which says why. Only for use before the receive
// goroutine starts.
func helloErr(stream sysmonstmv1.Ingest_StreamClient, err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	for {
		if _, rerr := stream.Recv(); rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return err
			}
			return rerr
		}
	}
}
