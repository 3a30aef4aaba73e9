package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
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
	if r == nil {
		e.mu.Unlock()
		if _, err := getAlert(ctx, e.db, id); err != nil {
			return Alert{}, err
		}
		return Alert{}, conflict("alert %q is resolved: there is nothing to acknowledge", id)
	}
	now := e.now().UTC()
	if ack {
		r.a.Acknowledged = true
		r.a.Ack = &Ack{By: who, At: now, Comment: comment}
	} else {
		r.a.Acknowledged = false
		r.a.Ack = nil
	}
	r.a.UpdatedAt = now
	e.dirty[id] = r
	a := r.snapshot()
	e.mu.Unlock()
	return a, nil
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
