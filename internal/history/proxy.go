package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"

	"github.com/sysmonstm/sysmonstm/internal/httpjson"
)

// maxProxyFormBytes bounds a proxied POST form (promapi's limit).
const maxProxyFormBytes = 1 << 20

// ProxyRoutes are the Prometheus query API routes (the ones promapi
// serves, /federate excepted) forwarded to the TSDB: the answer's status
// and body pass through unchanged. The hub's own authentication runs in
// front (its middleware); the caller's Authorization and Cookie headers
// are not forwarded, the TSDB gets the hub's credentials instead. A TSDB
// that cannot be reached answers 503 with errorType "unavailable".
func (c *Client) ProxyRoutes() []httpjson.Route {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(c.base)
			pr.Out.URL.User = nil
			for _, h := range []string{"Authorization", "Cookie", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				pr.Out.Header.Del(h)
			}
			pr.Out.Header.Set("User-Agent", "sysmonstm-history-proxy")
		},
		Transport: proxyTransport{c},
		ModifyResponse: func(resp *http.Response) error {
			switch {
			case resp.StatusCode/100 == 5 || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
				c.requests.WithLabelValues("unavailable").Inc()
			case resp.StatusCode/100 == 4:
				c.requests.WithLabelValues("refused").Inc()
			default:
				c.requests.WithLabelValues("ok").Inc()
			}
			resp.Body = &boundedBody{rc: resp.Body, left: c.opts.MaxResponseBytes}
			return nil
		},
		ErrorHandler: c.proxyError,
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), c.opts.Timeout)
		defer cancel()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxProxyFormBytes)
		}
		rp.ServeHTTP(w, r.WithContext(ctx))
	})
	var rs []httpjson.Route
	for _, p := range []struct {
		path string
		post bool
	}{
		{"/api/v1/query", true}, {"/api/v1/query_range", true}, {"/api/v1/series", true}, {"/api/v1/labels", true},
		{"/api/v1/label/{name}/values", false}, {"/api/v1/metadata", false}, {"/api/v1/status/buildinfo", false},
	} {
		rs = append(rs, httpjson.Route{Pattern: http.MethodGet + " " + p.path, Handler: h})
		if p.post {
			rs = append(rs, httpjson.Route{Pattern: http.MethodPost + " " + p.path, Handler: h})
		}
	}
	return rs
}

// proxyTransport adds the hub's TSDB credentials to each proxied request.
type proxyTransport struct{ c *Client }

func (t proxyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.c.authorize(req); err != nil {
		return nil, err
	}
	return t.c.opts.Transport.RoundTrip(req)
}

// authorize sets the TSDB credentials on req: the credentials file's, else
// the URL's user info as basic auth.
func (c *Client) authorize(req *http.Request) error {
	if err := c.target.Authorize(req); err != nil {
		return err
	}
	if u := c.base.User; u != nil && req.Header.Get("Authorization") == "" {
		pass, _ := u.Password()
		req.SetBasicAuth(u.Username(), pass)
	}
	return nil
}

// proxyError answers a proxied request the TSDB did not answer, in the
// Prometheus API's error format.
func (c *Client) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(r.Context().Err(), context.Canceled) {
		return // the client is gone
	}
	c.requests.WithLabelValues("unavailable").Inc()
	msg := "history TSDB " + c.Redacted() + " unreachable"
	if errors.Is(err, context.DeadlineExceeded) {
		msg = fmt.Sprintf("history TSDB %s: no answer within %s", c.Redacted(), c.opts.Timeout)
	}
	c.log.Warn("history proxy", "url", c.Redacted(), "path", r.URL.Path, "err", err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "unavailable", "error": msg})
}

// boundedBody fails a proxied answer longer than its bound (the client
// sees a cut response).
type boundedBody struct {
	rc   io.ReadCloser
	left int64
}

var errTooLarge = errors.New("history TSDB answer too large")

func (b *boundedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		n = int(b.left)
		err = errTooLarge
	}
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }
