package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/httpjson"
)

// maxBody bounds the JSON bodies of the auth API.
const maxBody = 16 << 10

// Routes are the auth endpoints: login, logout, me, and the admin API of
// agent tokens and users.
func (a *HTTP) Routes() []httpjson.Route {
	h := func(pattern string, handler http.Handler) httpjson.Route {
		return httpjson.Route{Pattern: pattern, Handler: handler}
	}
	return []httpjson.Route{
		h("POST /api/auth/login", http.HandlerFunc(a.login)),
		h("POST /api/auth/logout", http.HandlerFunc(a.logout)),
		h("GET /api/auth/me", http.HandlerFunc(a.me)),
		h("GET /api/tokens", a.admin(a.listTokens)),
		h("POST /api/tokens", a.admin(a.createToken)),
		h("DELETE /api/tokens/{id}", a.admin(a.revokeToken)),
		h("GET /api/users", a.admin(a.listUsers)),
		h("POST /api/users", a.admin(a.addUser)),
		h("PUT /api/users/{name}", a.admin(a.updateUser)),
		h("DELETE /api/users/{name}", a.admin(a.removeUser)),
	}
}

// admin wraps h to answer 401/403 unless the principal is an admin (reads
// of tokens and users are admin-only too).
func (a *HTTP) admin(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		switch {
		case !ok || p.Anonymous:
			writeError(w, http.StatusUnauthorized, "log in as an admin")
		case !p.IsAdmin():
			writeError(w, http.StatusForbidden, "admin role required: "+p.Name()+" is a "+string(p.Role))
		default:
			h(w, r)
		}
	})
}

// decodeBody reads one JSON object of at most maxBody bytes into v,
// refusing unknown fields; it answers the error itself and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxBody))
		case errors.Is(err, io.EOF):
			writeError(w, http.StatusBadRequest, "empty body: want a JSON object")
		default:
			writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		}
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "invalid JSON body: more than one value")
		return false
	}
	return true
}

// storeError answers a Store error with its status.
func (a *HTTP) storeError(w http.ResponseWriter, err error) {
	var inv *InvalidError
	switch {
	case errors.As(err, &inv):
		writeError(w, http.StatusBadRequest, inv.Msg)
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrExists), errors.Is(err, ErrLastAdmin):
		writeError(w, http.StatusConflict, err.Error())
	default:
		// What is left is the database failing (PostgreSQL down or
		// restarting, SQLite's disk full): try again later.
		a.log.Error("auth store", "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, ErrStoreUnavailable.Error())
	}
}

// clientIP is the request's peer address (proxies' headers are not
// trusted: they are the client's to forge).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// sameOrigin reports whether an Origin header names this host.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type loginResponse struct {
	Token     string    `json:"token"`
	User      string    `json:"user"`
	Role      Role      `json:"role"`
	CSRF      string    `json:"csrf_token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (a *HTTP) login(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r) {
		writeError(w, http.StatusForbidden, "cross-origin login refused")
		return
	}
	var req loginRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Username == "" || req.Password == "" {
		writeError(w, http.StatusBadRequest, "username and password are required")
		return
	}
	if len(req.Username) > 256 || len(req.Password) > 1024 {
		writeError(w, http.StatusBadRequest, "username or password too long")
		return
	}
	ip := clientIP(r)
	// Reserve the attempt before the (slow) password check, so concurrent
	// guesses count before they are checked, not after.
	att, le := a.lim.Begin(ip, req.Username)
	if le != nil {
		w.Header().Set("Retry-After", strconv.Itoa(le.Seconds()))
		a.met.refuse(RefusedLocked)
		a.log.Warn("login refused: locked out", "user", req.Username, "remote", ip, "retry_after_s", le.Seconds(), "in_progress", le.Pending)
		writeError(w, http.StatusTooManyRequests, le.Error())
		return
	}
	defer att.Abort() // unless Fail or Succeed ended it
	if !a.gate.enter(r.Context()) {
		w.Header().Set("Retry-After", "1")
		a.met.refuse(RefusedBusy)
		a.log.Warn("login refused: too many password checks at once", "user", req.Username, "remote", ip)
		writeError(w, http.StatusServiceUnavailable, "too many logins being checked at once: try again in 1 s")
		return
	}
	u, err := func() (User, error) {
		defer a.gate.leave()
		return a.check(r.Context(), req.Username, req.Password)
	}()
	if errors.Is(err, ErrBadCredentials) {
		locked := att.Fail()
		a.met.refuse(RefusedBadCredentials)
		a.log.Warn("login failed", "user", req.Username, "remote", ip, "locked_for", locked)
		writeError(w, http.StatusUnauthorized, ErrBadCredentials.Error())
		return
	}
	if err != nil {
		a.storeError(w, err)
		return
	}
	att.Succeed()
	tok, sess, err := a.store.CreateSession(r.Context(), u.Name)
	if err != nil {
		a.storeError(w, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    tok,
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   r.TLS != nil,
		Expires:  time.Now().Add(a.store.opts.SessionMaxAge),
	})
	a.log.Info("login", "user", u.Name, "role", u.Role, "remote", ip)
	writeJSON(w, http.StatusOK, loginResponse{Token: tok, User: u.Name, Role: u.Role, CSRF: sess.CSRF, ExpiresAt: sess.ExpiresAt})
}

func (a *HTTP) logout(w http.ResponseWriter, r *http.Request) {
	tok, cookie := "", false
	if t, ok := ParseBearer(r.Header.Get("Authorization")); ok && !IsAgentToken(t) {
		tok = t
	} else if c, err := r.Cookie(CookieName); err == nil {
		tok, cookie = c.Value, true
	}
	if tok != "" {
		sess, err := a.store.LookupSession(r.Context(), tok)
		switch {
		case err == nil:
			if cookie && !validCSRF(r, &sess) {
				writeError(w, http.StatusForbidden, "missing or invalid CSRF token")
				return
			}
			if err := a.store.DeleteSession(r.Context(), tok); err != nil {
				a.storeError(w, err)
				return
			}
		case !errors.Is(err, ErrNotFound):
			a.storeError(w, err)
			return
		}
	}
	// An unknown or expired session is logged out already: clear the cookie.
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

type meResponse struct {
	User      string     `json:"user"`
	Role      Role       `json:"role"`
	Anonymous bool       `json:"anonymous"`
	CSRF      string     `json:"csrf_token"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func (a *HTTP) me(w http.ResponseWriter, r *http.Request) {
	p, ok := FromContext(r.Context())
	if !ok {
		writeError(w, http.StatusUnauthorized, "not logged in")
		return
	}
	resp := meResponse{User: p.User, Role: p.Role, Anonymous: p.Anonymous}
	if s := sessionFrom(r.Context()); s != nil {
		resp.CSRF = s.CSRF
		e := s.ExpiresAt
		resp.ExpiresAt = &e
	}
	writeJSON(w, http.StatusOK, resp)
}

type createTokenRequest struct {
	Machine string `json:"machine"`
	Expires string `json:"expires"` // "720h", "30d"; "" = never
	Name    string `json:"name"`
}

type createTokenResponse struct {
	Token
	Secret string `json:"token"`
}

func (a *HTTP) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := a.store.ListTokens(r.Context())
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ts)
}

func (a *HTTP) createToken(w http.ResponseWriter, r *http.Request) {
	var req createTokenRequest
	if !decodeBody(w, r, &req) {
		return
	}
	exp, err := ParseExpiry(req.Expires)
	if err != nil {
		a.storeError(w, err)
		return
	}
	t, tok, err := a.store.CreateToken(r.Context(), NewToken{Name: req.Name, Machine: req.Machine, Expires: exp})
	if err != nil {
		a.storeError(w, err)
		return
	}
	p, _ := FromContext(r.Context())
	a.log.Info("agent token created", "id", t.ID, "machine", t.Machine, "by", p.Name())
	writeJSON(w, http.StatusCreated, createTokenResponse{Token: t, Secret: tok})
}

func (a *HTTP) revokeToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.store.RevokeToken(r.Context(), id); err != nil {
		a.storeError(w, err)
		return
	}
	p, _ := FromContext(r.Context())
	a.log.Info("agent token revoked", "id", id, "by", p.Name())
	w.WriteHeader(http.StatusNoContent)
}

type addUserRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

type updateUserRequest struct {
	Role     *string `json:"role"`
	Password *string `json:"password"`
}

func (a *HTTP) listUsers(w http.ResponseWriter, r *http.Request) {
	us, err := a.store.ListUsers(r.Context())
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, us)
}

func (a *HTTP) addUser(w http.ResponseWriter, r *http.Request) {
	var req addUserRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Role == "" {
		req.Role = string(RoleViewer)
	}
	role, err := ParseRole(req.Role)
	if err != nil {
		a.storeError(w, err)
		return
	}
	u, err := a.store.AddUser(r.Context(), req.Username, req.Password, role)
	if err != nil {
		a.storeError(w, err)
		return
	}
	p, _ := FromContext(r.Context())
	a.log.Info("user added", "user", u.Name, "role", u.Role, "by", p.Name())
	writeJSON(w, http.StatusCreated, u)
}

func (a *HTTP) updateUser(w http.ResponseWriter, r *http.Request) {
	var req updateUserRequest
	if !decodeBody(w, r, &req) {
		return
	}
	var role *Role
	if req.Role != nil {
		ro, err := ParseRole(*req.Role)
		if err != nil {
			a.storeError(w, err)
			return
		}
		role = &ro
	}
	name := r.PathValue("name")
	u, err := a.store.UpdateUser(r.Context(), name, role, req.Password)
	if err != nil {
		a.storeError(w, err)
		return
	}
	p, _ := FromContext(r.Context())
	a.log.Info("user changed", "user", u.Name, "role", u.Role, "password_changed", req.Password != nil, "by", p.Name())
	writeJSON(w, http.StatusOK, u)
}

func (a *HTTP) removeUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := a.store.RemoveUser(r.Context(), name); err != nil {
		a.storeError(w, err)
		return
	}
	p, _ := FromContext(r.Context())
	a.log.Info("user removed", "user", name, "by", p.Name())
	w.WriteHeader(http.StatusNoContent)
}
