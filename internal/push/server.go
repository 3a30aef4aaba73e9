package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// maxBody bounds one push request body, bytes.
const maxBody = 1 << 20

// ErrInUse means another agent answers on the socket.
var ErrInUse = errors.New("another agent is listening on the push socket")

// DefaultSocket is the socket path agent and `sysmonstm push` agree on:
// /run/sysmonstm/agent.sock for root, $XDG_RUNTIME_DIR/sysmonstm-agent.sock
// otherwise, and a per-user name in the temp directory when neither fits.
func DefaultSocket() string {
	if os.Geteuid() == 0 {
		return "/run/sysmonstm/agent.sock"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "sysmonstm-agent.sock")
	}
	return filepath.Join(os.TempDir(), "sysmonstm-agent-"+strconv.Itoa(os.Geteuid())+".sock")
}

// Server serves POST /push on a unix socket into a Store.
type Server struct {
	store *Store
	log   *slog.Logger
	lis   net.Listener
	path  string
}

// Listen binds the unix socket at path with the given file mode (e.g.
// 0o600). A stale socket left by a dead agent is removed; if another agent
// answers on it, Listen returns ErrInUse.
func Listen(path string, mode fs.FileMode, store *Store, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("push socket %s exists and is not a socket; remove it or pick another path", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%w %s", ErrInUse, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale push socket: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("push socket directory: %w", err)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on push socket: %w", err)
	}
	if err := os.Chmod(path, mode); err != nil {
		lis.Close()
		return nil, fmt.Errorf("push socket mode: %w", err)
	}
	return &Server{store: store, log: log, lis: lis, path: path}, nil
}

// Path returns the socket path.
func (s *Server) Path() string { return s.path }

// Run serves until ctx ends, then closes the listener (removing the socket
// file) and returns nil.
func (s *Server) Run(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /push", s.handlePush)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(s.lis) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
		return nil
	case err := <-done:
		return fmt.Errorf("push socket %s: %w", s.path, err)
	}
}

// request is the body of POST /push.
type request struct {
	Metrics []Metric `json:"metrics"`
}

func (s *Server) handlePush(w http.ResponseWriter, r *http.Request) {
	var req request
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody+1))
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid body: want {\"metrics\":[{\"name\",\"labels\",\"value\"}]}: " + err.Error()})
		return
	}
	if err := s.store.Set(req.Metrics); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	s.log.Debug("metrics pushed", "count", len(req.Metrics))
	writeJSON(w, http.StatusOK, map[string]int{"accepted": len(req.Metrics)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Close closes the listener without serving (for a caller that gives up
// before Run); it removes the socket file.
func (s *Server) Close() { _ = s.lis.Close() }
