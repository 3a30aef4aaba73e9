package config

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestSettingError(t *testing.T) {
	f := func(e *SettingError, key, flag string) {
		t.Helper()
		if got := e.Error(); got != key {
			t.Errorf("Error() = %q, want %q", got, key)
		}
		if got := Flagged(fmt.Errorf("hub: %w", e)).Error(); got != "hub: "+flag {
			t.Errorf("Flagged = %q, want %q", got, "hub: "+flag)
		}
	}
	f(&SettingError{Setting: "offline-after", Value: "500ms", Reason: "must be at least 1s"},
		"offline-after 500ms: must be at least 1s", "--offline-after 500ms: must be at least 1s")
	f(&SettingError{Setting: "retention-1m", Value: "1h0m0s", Reason: "must be at least {retention-raw} (24h0m0s)"},
		"retention-1m 1h0m0s: must be at least retention-raw (24h0m0s)", "--retention-1m 1h0m0s: must be at least --retention-raw (24h0m0s)")
	f(&SettingError{Reason: "{tls-cert} and {tls-key} go together"}, "tls-cert and tls-key go together", "--tls-cert and --tls-key go together")
	f(&SettingError{Setting: "tls-ca", Err: fs.ErrNotExist}, "tls-ca: file does not exist", "--tls-ca: file does not exist")
	f(&SettingError{Reason: "{tls-cert}/{tls-key}", Err: fs.ErrNotExist}, "tls-cert/tls-key: file does not exist", "--tls-cert/--tls-key: file does not exist")

	err := Flagged(fmt.Errorf("start: %w", &SettingError{Setting: "tls-ca", Err: fs.ErrNotExist}))
	var se *SettingError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &se) || se.Setting != "tls-ca" {
		t.Errorf("Flagged lost the chain of %v", err)
	}
	plain := errors.New("plain")
	if Flagged(plain) != plain {
		t.Error("Flagged changed an error without a setting")
	}
}
