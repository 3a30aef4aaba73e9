package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/config"
)

// Push sends ms to the agent listening on socket.
func Push(ctx context.Context, socket string, ms []Metric) error {
	body, err := json.Marshal(request{Metrics: ms})
	if err != nil {
		return fmt.Errorf("encode metrics: %w", err)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://agent/push", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("no agent at %s; start one with `sysmonstm agent` %w", socket,
				&config.SettingError{Reason: "(or pass its {push-socket} with {socket})"})
		}
		return fmt.Errorf("push to agent at %s: %w", socket, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("agent rejected the push: %s", e.Error)
		}
		return fmt.Errorf("agent answered %s", resp.Status)
	}
	return nil
}
