package collect

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"time"
)

// runFunc runs a program with a fixed argv (no shell) and returns its
// standard output. Collectors that exec take one as a field so tests can
// substitute fixture output.
type runFunc func(ctx context.Context, argv ...string) ([]byte, error)

// execRun is the production runFunc: exec.CommandContext with a C locale and
// a fixed PATH, killed when ctx ends. A non-zero exit status is returned as
// an *exec.ExitError together with whatever the program printed (smartctl
// encodes disk problems in its exit bits but still prints its JSON).
func execRun(ctx context.Context, argv ...string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("exec: empty argv")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdin = nil
	cmd.WaitDelay = time.Second // a child holding stdout open cannot outlive the timeout by much
	return cmd.Output()
}

// lookPath resolves a program name on the usual system directories; "" when
// it is not installed.
func lookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"} {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// slowSource runs an expensive fetch (an exec, an HTTP call) in the
// background at most once per interval and hands out the latest result, so
// a tick never waits on it: the first ticks after start emit nothing until
// the first fetch returns, and a hung fetch is bounded by timeout while the
// collector keeps emitting the previous values. A failed fetch clears the
// cached value (stale SMART or GPU readings are worse than a gap).
type slowSource[T any] struct {
	interval time.Duration // minimum time between fetch starts
	timeout  time.Duration // hard limit of one fetch
	fetch    func(ctx context.Context) (T, error)
	now      func() time.Time // time.Now; tests substitute a fake clock
	log      *slog.Logger     // fetch errors are logged when their text changes
	what     string           // what is fetched, for the log ("smartctl")

	wg sync.WaitGroup // tracks the running fetch; tests wait on it

	mu      sync.Mutex // protects every field below
	running bool
	started time.Time // start of the latest fetch; zero before the first
	val     T
	ok      bool   // val holds the result of the latest fetch
	err     error  // error of the latest fetch
	force   bool   // start a fetch on the next get regardless of interval
	lastLog string // text of the latest logged error
	gen     uint64 // number of fetches that have returned
}

// get returns the cached value, whether there is one, and the latest fetch
// error, after starting a background fetch when the interval has passed and
// none is running.
func (s *slowSource[T]) get() (T, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pollLocked()
	return s.val, s.ok, s.err
}

// getGen is get that returns the generation of the value instead of the
// error: how many fetches had returned when it was read. Reading the
// generation after get would count a fetch that returned in between, whose
// value the caller does not have.
func (s *slowSource[T]) getGen() (T, bool, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pollLocked()
	return s.val, s.ok, s.gen
}

// pollLocked starts a background fetch when the interval has passed (or a
// refresh was asked for) and none is running; s.mu is held.
func (s *slowSource[T]) pollLocked() {
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	t := now()
	if !s.running && (s.force || s.started.IsZero() || t.Sub(s.started) >= s.interval) {
		s.running, s.started, s.force = true, t, false
		s.wg.Add(1)
		go s.refresh()
	}
}

// nextGeneration returns the generation of the first fetch that starts
// from now on: a fetch already running may have started before whatever
// the caller wants it to see.
func (s *slowSource[T]) nextGeneration() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return s.gen + 2
	}
	return s.gen + 1
}

// refreshSoon makes the next get start a fetch even if the interval has not
// passed (e.g. an unknown container appeared).
func (s *slowSource[T]) refreshSoon() {
	s.mu.Lock()
	s.force = true
	s.mu.Unlock()
}

func (s *slowSource[T]) refresh() {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	v, err := s.fetch(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = false
	s.gen++
	s.err = err
	if err != nil {
		var zero T
		s.val, s.ok = zero, false
		if msg := err.Error(); msg != s.lastLog && s.log != nil {
			s.lastLog = msg
			s.log.Warn("slow source failed; its series are left out until it recovers", "source", s.what, "err", err)
		}
		return
	}
	if s.lastLog != "" && s.log != nil {
		s.log.Info("slow source recovered", "source", s.what)
	}
	s.lastLog = ""
	s.val, s.ok = v, true
}

// wait blocks until a running fetch has returned (tests only).
func (s *slowSource[T]) wait() { s.wg.Wait() }
