package edge

import (
	"strings"
	"testing"

	"github.com/sysmonstm/sysmonstm/internal/config"
)

func TestValidateKey(t *testing.T) {
	bad := func(key, want string) {
		t.Helper()
		err := ValidateKey(key)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateKey(%q) = %v, want an error with %q", key, err, want)
		}
	}
	bad("", "is empty")
	bad(strings.Repeat(" ", 16), "only whitespace")
	bad(" \t\n \r\n", "only whitespace")
	bad("0123456789abcdef\n", "starts or ends with whitespace")
	bad("  0123456789abcdef", "starts or ends with whitespace")
	bad("0123456789\x00abcdef", "control character")
	bad("0123456789abcde", "is 15 characters, need at least 16")
	bad("ébcdéfghijklmnó", "is 15 characters") // characters, not bytes
	bad(strings.Repeat("a", 64), "only 1 different characters")
	bad(strings.Repeat("ab", 16), "only 2 different characters")
	bad("0123456789abcd\xff\xfe", "not valid UTF-8")

	for _, good := range []string{
		testKey,
		"0123456789abcdef",
		"5f1e0c7a9b3d2e84",
		"correct horse battery staple",
		strings.Repeat("abcdef", 3),
	} {
		if err := ValidateKey(good); err != nil {
			t.Errorf("ValidateKey(%q) = %v", good, err)
		}
	}
}

// TestEdgeAndForwarderRejectBlankKeys: the relay and the hub's forwarder
// both refuse a key of 16 spaces, which was accepted as long enough.
func TestEdgeAndForwarderRejectBlankKeys(t *testing.T) {
	blank := strings.Repeat(" ", 16)
	if s, err := New(Options{ListenHTTP: "127.0.0.1:0", Key: blank}); err == nil || !strings.Contains(config.Flagged(err).Error(), "--key is only whitespace") {
		if s != nil {
			s.Close()
		}
		t.Errorf("edge with a blank key: %v", err)
	}
	if _, err := NewForwarder(ForwarderOptions{URL: "ws://127.0.0.1:1/api/publish", Key: blank, Source: newLive(t)}); err == nil || !strings.Contains(config.Flagged(err).Error(), "--edge-key is only whitespace") {
		t.Errorf("forwarder with a blank key: %v", err)
	}
}
