package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// maxAckComment bounds an acknowledgement's comment, in bytes.
const maxAckComment = 1024

// Acknowledge acknowledges active alert id as who with a comment (ack
// true: no more repeat notifications until it resolves, which clears the
// acknowledgement) or removes the acknowledgement (ack false). A resolved
// alert answers a conflict error.
func (e *Engine) Acknowledge(ctx context.Context, id string, ack bool, who, comment string) (Alert, error) {
	e.mu.Lock()
	r := e.active[id]
	if r == nil || !e.leader.Load() {
		e.mu.Unlock()
		a, err := e.acknowledgeElsewhere(ctx, id, ack, who, comment)
		if err == nil && !e.leader.Load() {
			e.followAfterWrite(ctx)
		}
		return a, err
	}
	now := e.now().UTC()
	setAck(&r.a, ack, who, comment, now)
	e.dirty[id] = r
	a := r.snapshot()
	e.mu.Unlock()
	return a, nil
}

// setAck acknowledges a (or removes its acknowledgement) at now.
func setAck(a *Alert, ack bool, who, comment string, now time.Time) {
	if ack {
		a.Acknowledged = true
		a.Ack = &Ack{By: who, At: now, Comment: comment}
	} else {
		a.Acknowledged = false
		a.Ack = nil
	}
	a.UpdatedAt = now
}

// acknowledgeElsewhere acknowledges an alert this engine does not hold:
// on a database shared with other hubs (PostgreSQL), one of them may be
// evaluating it. Its stored row is updated while still active; that hub
// adopts the acknowledgement (ReloadAcks, on NOTIFY) and keeps it.
func (e *Engine) acknowledgeElsewhere(ctx context.Context, id string, ack bool, who, comment string) (Alert, error) {
	body, err := getAlertBody(ctx, e.db, id)
	if err != nil {
		return Alert{}, err
	}
	if body.State != StatePending && body.State != StateFiring {
		return Alert{}, conflict("alert %q is resolved: there is nothing to acknowledge", id)
	}
	setAck(&body.Alert, ack, who, comment, e.now().UTC())
	b, err := json.Marshal(body)
	if err != nil {
		return Alert{}, fmt.Errorf("encode alert %s: %w", id, err)
	}
	res, err := e.db.ExecContext(ctx, `UPDATE alerts SET body = ? WHERE id = ? AND state IN ('pending', 'firing')`, string(b), id)
	if err != nil {
		return Alert{}, fmt.Errorf("acknowledge alert %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return Alert{}, conflict("alert %q is resolved: there is nothing to acknowledge", id)
	}
	return body.Alert, nil
}

// ReloadAcks adopts acknowledgements that another hub sharing the
// database stored for alerts this engine holds (acknowledgeElsewhere),
// when the stored one is at least as recent as the engine's copy. Adopted
// ones are published and written back like a local acknowledgement. It
// returns how many it adopted.
func (e *Engine) ReloadAcks(ctx context.Context) (int, error) {
	recs, err := loadActiveAlerts(ctx, e.db)
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, stored := range recs {
		r := e.active[stored.a.ID]
		if r == nil || stored.a.UpdatedAt.Before(r.a.UpdatedAt) || sameAck(r.a, stored.a) {
			continue
		}
		r.a.Acknowledged, r.a.Ack, r.a.UpdatedAt = stored.a.Acknowledged, stored.a.Ack, stored.a.UpdatedAt
		e.dirty[r.a.ID] = r
		n++
	}
	return n, nil
}

func sameAck(a, b Alert) bool {
	if a.Acknowledged != b.Acknowledged || (a.Ack == nil) != (b.Ack == nil) {
		return false
	}
	return a.Ack == nil || (a.Ack.By == b.Ack.By && a.Ack.At.Equal(b.Ack.At) && a.Ack.Comment == b.Ack.Comment)
}

// DecodeAck parses the JSON of an acknowledgement, {"comment": "…"}, and
// returns its comment trimmed; an empty or blank body is an
// acknowledgement without a comment. Unknown fields are errors.
func DecodeAck(b []byte) (comment string, err error) {
	var in struct {
		Comment string `json:"comment"`
	}
	if len(bytes.TrimSpace(b)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return "", jsonFieldError(err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return "", fieldErr("body", "unexpected data after the JSON object")
		}
	}
	comment = strings.TrimSpace(in.Comment)
	if len(comment) > maxAckComment {
		return "", fieldErr("comment", "is %d bytes, limit %d", len(comment), maxAckComment)
	}
	return comment, nil
}
