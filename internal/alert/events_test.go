package alert

import (
	"bytes"
	"testing"
	"time"
)

// TestAlertEventsOnTheLiveStream: a state change reaches live subscribers
// as {"type":"alert","alert":{…}}.
func TestAlertEventsOnTheLiveStream(t *testing.T) {
	h := newHarness(t, Options{})
	h.opts.Publish = nil
	sub := h.live.Subscribe(64)
	defer sub.Close()
	h.e.opts.Publish = h.live.Publish
	h.createRule(`{"name":"cpu","metric":"cpu","op":">","threshold":90}`)
	h.observe("web-1", h.series("cpu"), 95)
	h.step()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-sub.C():
			if ev.Type != EventAlert {
				continue
			}
			if ev.Machine != "web-1" || !bytes.HasPrefix(ev.JSON, []byte(`{"type":"alert","alert":{"id":`)) || !bytes.Contains(ev.JSON, []byte(`"state":"firing"`)) {
				t.Fatalf("event %s", ev.JSON)
			}
			return
		case <-deadline:
			t.Fatal("no alert event")
		}
	}
}
