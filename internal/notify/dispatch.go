package notify

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of DispatcherOptions.
const (
	DefaultMaxAttempts = 5
	DefaultBaseBackoff = time.Second
	DefaultMaxBackoff  = 30 * time.Second
	DefaultTimeout     = 10 * time.Second
)

// maxRetryAfter is the longest Retry-After a Send waits for; a server that
// asks for more makes Send give up on the message.
const maxRetryAfter = 5 * time.Minute

// DispatcherOptions configures a Dispatcher. Zero values take the defaults.
type DispatcherOptions struct {
	// HTTPClient sends webhook, slack, discord and ntfy requests. Default:
	// a client that does not follow redirects (a redirected POST would
	// lose or re-send its body). Each attempt is bounded by Timeout
	// through its context either way.
	HTTPClient *http.Client
	// Logger receives one line per failed attempt and per message given
	// up on; never URLs, tokens or passwords. Default: slog.Default().
	Logger *slog.Logger
	// Registerer gets the notification metrics; nil registers none.
	Registerer prometheus.Registerer
	// MaxAttempts is how often one message is tried (default 5).
	MaxAttempts int
	// BaseBackoff is the wait after the first failed attempt (default
	// 1s); it doubles per attempt up to MaxBackoff (default 30s), with
	// jitter.
	BaseBackoff, MaxBackoff time.Duration
	// Timeout bounds one attempt: connect, send and read the answer
	// (default 10s).
	Timeout time.Duration
	// RootCAs verifies SMTP servers' certificates; nil uses the system
	// roots.
	RootCAs *x509.CertPool
}

// Dispatcher formats messages for each channel type and delivers them with
// retries. It is safe for concurrent use; the alert engine calls Send from
// one goroutine per channel.
type Dispatcher struct {
	client      *http.Client
	log         *slog.Logger
	maxAttempts int
	base, max   time.Duration
	timeout     time.Duration
	rootCAs     *x509.CertPool
	metrics     *metrics

	mu     sync.Mutex
	status map[string]*Status // by Config.ID; guarded by mu
}

// NewDispatcher returns a Dispatcher with o's settings. It fails when a
// setting is negative or the metrics cannot be registered.
func NewDispatcher(o DispatcherOptions) (*Dispatcher, error) {
	if o.MaxAttempts < 0 || o.BaseBackoff < 0 || o.MaxBackoff < 0 || o.Timeout < 0 {
		return nil, errors.New("notify: negative dispatcher option")
	}
	d := &Dispatcher{
		client:      o.HTTPClient,
		log:         o.Logger,
		maxAttempts: o.MaxAttempts,
		base:        o.BaseBackoff,
		max:         o.MaxBackoff,
		timeout:     o.Timeout,
		rootCAs:     o.RootCAs,
		status:      map[string]*Status{},
	}
	if d.client == nil {
		d.client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.maxAttempts == 0 {
		d.maxAttempts = DefaultMaxAttempts
	}
	if d.base == 0 {
		d.base = DefaultBaseBackoff
	}
	if d.max == 0 {
		d.max = DefaultMaxBackoff
	}
	if d.max < d.base {
		d.max = d.base
	}
	if d.timeout == 0 {
		d.timeout = DefaultTimeout
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	d.metrics = m
	return d, nil
}

// Send validates c, formats m for c.Type and delivers it. Transient
// failures (network errors, timeouts, HTTP 408, 429 and 5xx, SMTP 4xx) are
// retried up to MaxAttempts with exponential backoff and jitter; a 429 or
// 503 with Retry-After waits as long as the server asks (up to 5 minutes).
// Other failures (an invalid config, HTTP 4xx, SMTP 5xx, a certificate
// that does not verify, a server without STARTTLS) are not retried. Send
// blocks until the message is delivered, given up on, or ctx is done, and
// records the outcome in Status(c.ID) (when c.ID is set) and the metrics.
// The error names the channel, never its URL or secrets; a rejected HTTP
// request wraps a *StatusError.
func (d *Dispatcher) Send(ctx context.Context, c Config, m Message) error {
	err := d.send(ctx, c, m)
	if c.ID != "" {
		d.record(c.ID, err)
	}
	return err
}

func (d *Dispatcher) send(ctx context.Context, c Config, m Message) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("notifier %q: invalid config: %w", cleanLine(c.Name, maxNameLen), err)
	}
	deliver, err := d.prepare(c, m)
	if err != nil {
		return fmt.Errorf("%s notifier %q: format: %w", c.Type, c.Name, err)
	}
	log := d.log.With("notifier_id", c.ID, "notifier", c.Name, "type", c.Type)
	var last error
	attempts := 0
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			last = joinCause(last, err)
			break
		}
		attempts = attempt
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, d.timeout)
		err := deliver(actx)
		cancel()
		d.metrics.attempt(c.Type, err == nil, time.Since(start))
		if err == nil {
			d.metrics.message(c.Type, true)
			if attempt > 1 {
				log.Info("notification delivered after retries", "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s: %w", d.timeout, err)
		}
		last = err
		log.Warn("notification attempt failed", "attempt", attempt, "err", err)
		if ctx.Err() != nil {
			break
		}
		wait, retry := d.backoff(attempt, err)
		if !retry {
			d.metrics.message(c.Type, false)
			err = fmt.Errorf("%s notifier %q: %w (not retried)", c.Type, c.Name, last)
			log.Error("notification failed", "err", err)
			return err
		}
		if attempt >= d.maxAttempts {
			break
		}
		if err := sleepCtx(ctx, wait); err != nil {
			last = joinCause(last, err)
			break
		}
	}
	d.metrics.message(c.Type, false)
	err = fmt.Errorf("%s notifier %q: gave up after %d attempts: %w", c.Type, c.Name, attempts, last)
	log.Error("notification failed", "err", err)
	return err
}

// joinCause adds ctx's error to the last delivery error.
func joinCause(last, ctxErr error) error {
	if last == nil {
		return ctxErr
	}
	return fmt.Errorf("%w (then %w)", last, ctxErr)
}

// backoff says whether err is worth another attempt and how long to wait
// before it.
func (d *Dispatcher) backoff(attempt int, err error) (time.Duration, bool) {
	if isPermanent(err) {
		return 0, false
	}
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		if se.RetryAfter > maxRetryAfter {
			return 0, false
		}
		return se.RetryAfter, true
	}
	wait := d.base
	for i := 1; i < attempt && wait < d.max; i++ {
		wait *= 2
	}
	wait = min(wait, d.max)
	// Equal jitter: half fixed, half random, so concurrent channels that
	// failed together do not retry in lockstep.
	half := wait / 2
	return half + rand.N(half+1), true
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// record updates channel id's status with a Send's outcome.
func (d *Dispatcher) record(id string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.status[id]
	if s == nil {
		s = &Status{}
		d.status[id] = s
	}
	if err == nil {
		s.LastSuccess = time.Now().UTC()
		s.Sent++
		return
	}
	s.LastError = err.Error()
	s.LastErrorAt = time.Now().UTC()
	s.Failed++
}

// Status returns the delivery record of channel id; the zero Status when
// nothing was sent to it yet.
func (d *Dispatcher) Status(id string) Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.status[id]; s != nil {
		return *s
	}
	return Status{}
}

// Forget drops channel id's delivery record, for a deleted channel.
func (d *Dispatcher) Forget(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.status, id)
}

// prepare formats m for c's type once and returns the function that
// delivers it; retries send the same bytes.
func (d *Dispatcher) prepare(c Config, m Message) (func(context.Context) error, error) {
	ch, ok := lookupChannel(c.Type)
	if !ok {
		return nil, fmt.Errorf("type: unknown %q", c.Type)
	}
	p, err := ch.Format(c, m, time.Now())
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return p.Send(ctx, d, c) }, nil
}
