package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxResponseBytes bounds how much of a service's answer is read.
const maxResponseBytes = 1 << 20

// userAgent identifies the hub to the services it posts to.
const userAgent = "sysmonstm-notify/1"

// httpRequest is a formatted HTTP notification.
type httpRequest struct {
	body   []byte
	header http.Header // Content-Type included
}

// Send posts the request to c.URL once.
func (r httpRequest) Send(ctx context.Context, d *Dispatcher, c Config) error {
	return d.post(ctx, c, r)
}

// payloadOf returns an HTTP channel's formatted request as a Payload; nil
// when formatting failed.
func payloadOf(r httpRequest, err error) (Payload, error) {
	if err != nil {
		return nil, err
	}
	return r, nil
}

// validateHookOnly checks a channel configured by its incoming-webhook URL
// alone (Slack, Discord): every other field is refused.
func validateHookOnly(c Config) error {
	if err := validateWebhookURL(c); err != nil {
		return err
	}
	if err := refuseHeaders(c); err != nil {
		return err
	}
	if err := refuseToken(c); err != nil {
		return err
	}
	return refuseSMTP(c)
}

// StatusError is a service's answer other than 2xx.
type StatusError struct {
	// StatusCode is the HTTP status, e.g. 400.
	StatusCode int
	// Body is the start of the answer's body, cleaned to one line.
	Body string
	// RetryAfter is the wait the server asked for (429 and 503 with a
	// Retry-After header), else 0.
	RetryAfter time.Duration
}

// Error is "http 400 Bad Request: invalid_payload".
func (e *StatusError) Error() string {
	s := fmt.Sprintf("http %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	s = strings.TrimSpace(s)
	if e.Body != "" {
		s += ": " + e.Body
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// transient reports whether the status is worth retrying.
func (e *StatusError) transient() bool {
	return e.StatusCode == http.StatusRequestTimeout || e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// permanent marks err as not worth retrying.
func permanent(err error) error { return permanentError{err} }

// isPermanent reports whether retrying err is pointless: marked permanent,
// an HTTP status other than 408, 429 and 5xx, or a certificate that does
// not verify.
func isPermanent(err error) bool {
	var pe permanentError
	if errors.As(err, &pe) {
		return true
	}
	var se *StatusError
	if errors.As(err, &se) {
		return !se.transient()
	}
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// post delivers req to c.URL: one attempt.
func (d *Dispatcher) post(ctx context.Context, c Config, req httpRequest) error {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(req.body))
	if err != nil {
		// The URL passed Validate; the error text would quote it.
		return permanent(errors.New("invalid url"))
	}
	for k, vs := range req.header {
		r.Header[k] = vs
	}
	r.Header.Set("User-Agent", userAgent)
	for k, v := range c.Headers {
		r.Header.Set(k, v)
	}
	resp, err := d.client.Do(r)
	if err != nil {
		return stripURL(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	se := &StatusError{StatusCode: resp.StatusCode, Body: cleanLine(strings.TrimSpace(string(body)), 200)}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		se.Body = "redirect not followed; configure the final URL"
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		se.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return se
}

// stripURL removes the request URL from a client error: the URL may hold a
// token. What remains names the operation and the cause ("dial tcp
// 10.0.0.1:443: connection refused").
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date. 0 when absent or invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(24*time.Hour/time.Second) {
			return 24 * time.Hour
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// validateWebhookURL checks the incoming-webhook URL of a Slack or Discord
// channel: the path is the secret and must be there.
func validateWebhookURL(c Config) error {
	u, err := validateURL(c.URL)
	if err != nil {
		return err
	}
	if strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("url: needs the full %s webhook URL including its path", c.Type)
	}
	return nil
}
