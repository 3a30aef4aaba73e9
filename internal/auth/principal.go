// Package auth decides who may do what on the hub: agent tokens (stored
// hashed, optionally bound to one machine id, revocable), dashboard users
// with the roles admin and viewer, login sessions, CSRF protection and login
// rate limiting.
package auth

import "context"

// Role is a dashboard user's role.
type Role string

// Roles. Viewers read; admins also change rules, notifiers, tokens and users.
const (
	RoleAdmin  Role = "admin"
	RoleViewer Role = "viewer"
)

// Principal is who made a request.
type Principal struct {
	// User is the user name; "" for anonymous access.
	User string
	Role Role
	// Anonymous is set for unauthenticated read access, allowed only while
	// every HTTP listener is on loopback.
	Anonymous bool
	// Session is set when the request was authenticated by a session cookie
	// (and therefore needs a CSRF token on writes); false for bearer tokens.
	Session bool
	// Basic is set when the request was authenticated by HTTP Basic
	// credentials; such a principal only reads.
	Basic bool
}

// IsAdmin reports whether p may change configuration.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the request's principal; ok is false when the request
// did not pass the auth middleware.
func FromContext(ctx context.Context) (p Principal, ok bool) {
	p, ok = ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Name is how p is recorded (e.g. who acknowledged an alert): the user
// name, or "anonymous".
func (p Principal) Name() string {
	if p.User == "" {
		return "anonymous"
	}
	return p.User
}
