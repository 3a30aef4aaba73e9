package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sysmonstm/sysmonstm/internal/httpjson"
)

// CookieName is the session cookie.
const CookieName = "sysmonstm_session"

// CSRFHeader carries the session's CSRF token on cookie-authenticated
// writes.
const CSRFHeader = "X-CSRF-Token"

// HTTPOptions configure the HTTP side of auth.
type HTTPOptions struct {
	Store *Store // required
	// AnonymousRead admits requests without credentials as a read-only
	// viewer. The hub sets it only while its HTTP listener is on loopback.
	AnonymousRead bool
	// MetricsPublic serves GET /metrics to everyone; otherwise /metrics
	// follows the API's rule.
	MetricsPublic bool
	// Limiter counts failed logins; nil makes one on the wall clock.
	Limiter *Limiter
	// MaxPasswordChecks bounds the password checks (bcrypt) running at
	// once; 0 takes DefaultPasswordChecks(). Four logins per check may wait
	// for one; more are answered 503 at once.
	MaxPasswordChecks int
	// PasswordCheckWait is the longest a login waits for a password check
	// before 503; 0 takes DefaultPasswordCheckWait.
	PasswordCheckWait time.Duration
	// Registerer receives the login counters
	// (sysmonstm_login_refusals_total); nil: not exported.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// HTTP is the auth middleware and the auth, token and user API.
type HTTP struct {
	opts  HTTPOptions
	store *Store
	lim   *Limiter
	gate  *checkGate
	met   *loginMetrics
	log   *slog.Logger
	// check is the password check, store.CheckPassword (tests count its
	// calls).
	check func(ctx context.Context, name, password string) (User, error)
	// basicCache remembers verified HTTP Basic credentials (basic.go).
	basicCache *basicCache
}

// NewHTTP builds the HTTP side on opts.Store.
func NewHTTP(opts HTTPOptions) *HTTP {
	if opts.Limiter == nil {
		opts.Limiter = NewLimiter(nil)
	}
	if opts.MaxPasswordChecks <= 0 {
		opts.MaxPasswordChecks = DefaultPasswordChecks()
	}
	if opts.PasswordCheckWait <= 0 {
		opts.PasswordCheckWait = DefaultPasswordCheckWait
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &HTTP{
		opts:       opts,
		store:      opts.Store,
		lim:        opts.Limiter,
		gate:       newCheckGate(opts.MaxPasswordChecks, opts.PasswordCheckWait),
		met:        newLoginMetrics(opts.Registerer),
		log:        opts.Logger,
		check:      opts.Store.CheckPassword,
		basicCache: newBasicCache(opts.Limiter.now),
	}
}

// publicPages are the GET paths anyone may load: the dashboard shell and
// its page routes (so the login page loads), and the health probes.
var publicPages = map[string]bool{
	"/": true, "/app.js": true, "/health": true, "/ready": true, "/favicon.ico": true,
	"/alerts": true, "/rules": true, "/silences": true, "/notifiers": true, "/login": true, "/admin": true, "/explore": true,
}

// isPublic reports whether a request needs no principal at all.
func isPublic(method, path string) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	if publicPages[path] {
		return true
	}
	if strings.Contains(path, "..") || strings.Contains(path, "//") {
		return false // the mux would redirect it; decide on the clean path
	}
	return strings.HasPrefix(path, "/ui/") || strings.HasPrefix(path, "/machines/")
}

// readOnlyPOST are POST endpoints that only read (Prometheus clients such
// as Grafana send queries as POST forms).
var readOnlyPOST = map[string]bool{
	"/api/v1/query": true, "/api/v1/query_range": true, "/api/v1/series": true, "/api/v1/labels": true,
}

func isWrite(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return false
	case http.MethodPost:
		return !readOnlyPOST[r.URL.Path]
	}
	return true
}

type sessionKey struct{}

// authErr is a refusal of the middleware.
type authErr struct {
	status     int
	msg        string
	retryAfter int // s; 0: no Retry-After header
}

// Middleware authenticates every request and enforces the access rules:
// public pages and probes pass; agents' POST /api/v1/ingest and remote
// write's POST /api/v1/write are left to the ingest handlers (agent tokens); everything else needs a principal (a
// session cookie, "Authorization: Bearer <session token>", HTTP Basic with
// a user's name and password, or anonymous viewer access on loopback);
// writes need an admin, not by Basic, and a CSRF token when authenticated
// by cookie.
func (a *HTTP) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		switch {
		case r.Method == http.MethodPost && (path == "/api/v1/ingest" || path == "/api/v1/write" || path == "/api/auth/login" || path == "/api/auth/logout"):
			// Ingest checks agent tokens; login needs no principal; logout
			// checks its own session (and CSRF) and always clears the cookie.
			next.ServeHTTP(w, r)
			return
		case isPublic(r.Method, path) || (a.opts.MetricsPublic && path == "/metrics" && (r.Method == http.MethodGet || r.Method == http.MethodHead)):
			next.ServeHTTP(w, r) // no handler there needs a principal
			return
		}
		p, sess, err := a.authenticate(r)
		if err != nil {
			if err.retryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(err.retryAfter))
			}
			writeError(w, err.status, err.msg)
			return
		}
		write := isWrite(r)
		switch {
		case write && p.Anonymous:
			writeError(w, http.StatusUnauthorized, "log in to make changes: anonymous access is read-only")
			return
		case write && p.Basic:
			// A browser may send remembered Basic credentials on its own
			// (CSRF); Basic is for Prometheus clients, which only read.
			writeError(w, http.StatusForbidden, "HTTP Basic authentication is read-only: log in (POST /api/auth/login) and send the session token to make changes")
			return
		case write && p.Session && !validCSRF(r, sess):
			writeError(w, http.StatusForbidden, "missing or invalid CSRF token")
			return
		case write && !p.IsAdmin():
			writeError(w, http.StatusForbidden, "admin role required: "+p.Name()+" is a "+string(p.Role))
			return
		}
		next.ServeHTTP(w, r.WithContext(withSession(WithPrincipal(r.Context(), p), sess)))
	})
}

func withSession(ctx context.Context, s *Session) context.Context {
	if s == nil {
		return ctx
	}
	return context.WithValue(ctx, sessionKey{}, s)
}

func sessionFrom(ctx context.Context) *Session {
	s, _ := ctx.Value(sessionKey{}).(*Session)
	return s
}

func validCSRF(r *http.Request, sess *Session) bool {
	got := r.Header.Get(CSRFHeader)
	return sess != nil && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) == 1
}

// authenticate finds the request's principal: a bearer session token or
// HTTP Basic credentials, else the session cookie, else anonymous when
// allowed.
func (a *HTTP) authenticate(r *http.Request) (Principal, *Session, *authErr) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); isBasic(h) {
		p, err := a.basic(r)
		return p, nil, err
	} else if h != "" {
		tok, ok := ParseBearer(h)
		if !ok {
			return Principal{}, nil, &authErr{status: http.StatusUnauthorized, msg: `malformed Authorization header: want "Bearer <token>" (or "Basic" with a user name and password)`}
		}
		if !IsAgentToken(tok) {
			sess, err := a.store.LookupSession(ctx, tok)
			if err != nil {
				if !errors.Is(err, ErrNotFound) {
					a.log.Error("session lookup failed", "err", err)
					return Principal{}, nil, &authErr{status: http.StatusServiceUnavailable, msg: ErrStoreUnavailable.Error(), retryAfter: 5}
				}
				return Principal{}, nil, &authErr{status: http.StatusUnauthorized, msg: "invalid or expired token: log in again (POST /api/auth/login)"}
			}
			return Principal{User: sess.User, Role: sess.Role}, &sess, nil
		}
		// An agent token authenticates ingest only: treat it as absent.
		if !a.opts.AnonymousRead {
			return Principal{}, nil, &authErr{status: http.StatusUnauthorized, msg: "agent tokens only authenticate ingest: log in (POST /api/auth/login) and send the session token"}
		}
	} else if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		sess, err := a.store.LookupSession(ctx, c.Value)
		switch {
		case err == nil:
			return Principal{User: sess.User, Role: sess.Role, Session: true}, &sess, nil
		case !errors.Is(err, ErrNotFound):
			a.log.Error("session lookup failed", "err", err)
			return Principal{}, nil, &authErr{status: http.StatusServiceUnavailable, msg: ErrStoreUnavailable.Error(), retryAfter: 5}
		}
		// A stale cookie: carry on as if there were none.
	}
	if a.opts.AnonymousRead {
		return Principal{Role: RoleViewer, Anonymous: true}, nil, nil
	}
	return Principal{}, nil, &authErr{status: http.StatusUnauthorized, msg: "authentication required: log in at /login, or send Authorization: Bearer <token> from POST /api/auth/login"}
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

// writeError writes {"error": msg} with status; a 401 names the scheme.
func writeError(w http.ResponseWriter, status int, msg string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sysmonstm"`)
	}
	httpjson.Error(w, status, msg)
}
