package auth

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Agent tokens look like smt_<id>_<secret>: the id (10 random bytes) finds
// the token's row, the secret (32 random bytes) proves it. Both are
// lower-case unpadded base32, so a token is safe in shells, URLs and YAML.
const (
	tokenPrefix   = "smt_"
	tokenIDBytes  = 10
	tokenIDLen    = 16 // base32 of 10 bytes
	secretBytes   = 32
	secretLen     = 52 // base32 of 32 bytes, unpadded
	agentTokenLen = len(tokenPrefix) + tokenIDLen + 1 + secretLen
)

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrMalformedToken: the string is not of the form smt_<id>_<secret>.
var ErrMalformedToken = errors.New("malformed token: want smt_<id>_<secret> as printed by `sysmonstm token create`")

// ParseToken splits an agent token into its id and secret bytes.
func ParseToken(tok string) (id string, secret []byte, err error) {
	if len(tok) != agentTokenLen || !strings.HasPrefix(tok, tokenPrefix) || tok[len(tokenPrefix)+tokenIDLen] != '_' {
		return "", nil, ErrMalformedToken
	}
	id = tok[len(tokenPrefix) : len(tokenPrefix)+tokenIDLen]
	if !validTokenID(id) {
		return "", nil, ErrMalformedToken
	}
	secret, err = b32.DecodeString(tok[len(tokenPrefix)+tokenIDLen+1:])
	if err != nil || len(secret) != secretBytes {
		return "", nil, ErrMalformedToken
	}
	// Reject non-canonical encodings (trailing bits set): one secret, one
	// spelling.
	if b32.EncodeToString(secret) != tok[len(tokenPrefix)+tokenIDLen+1:] {
		return "", nil, ErrMalformedToken
	}
	return id, secret, nil
}

// IsAgentToken reports whether s has the shape of an agent token (so an
// API request carrying one as its bearer is not mistaken for a session).
func IsAgentToken(s string) bool { return strings.HasPrefix(s, tokenPrefix) }

// validTokenID reports whether id is 16 characters of the base32 alphabet.
func validTokenID(id string) bool {
	if len(id) != tokenIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// newAgentToken returns a fresh id, secret and the token string.
func newAgentToken() (id string, secret []byte, tok string, err error) {
	raw := make([]byte, tokenIDBytes+secretBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, "", fmt.Errorf("generate token: %w", err)
	}
	id = b32.EncodeToString(raw[:tokenIDBytes])
	secret = raw[tokenIDBytes:]
	return id, secret, tokenPrefix + id + "_" + b32.EncodeToString(secret), nil
}

// sessionTokenLen is the length of a session token: 32 random bytes,
// unpadded base64url.
const sessionTokenLen = 43

// newSessionToken returns 32 random bytes as unpadded base64url.
func newSessionToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate session token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// validSessionToken reports whether s can be a session token, before any
// database lookup.
func validSessionToken(s string) bool {
	if len(s) != sessionTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ParseBearer returns the token of an "Authorization: Bearer <token>"
// header value; ok is false for any other scheme or an empty token. The
// scheme is case-insensitive (RFC 7235).
func ParseBearer(header string) (token string, ok bool) {
	const scheme = "bearer "
	if len(header) < len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return "", false
	}
	token = strings.TrimSpace(header[len(scheme):])
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}
