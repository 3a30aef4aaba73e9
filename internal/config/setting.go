package config

import (
	"errors"
	"regexp"
	"strings"
)

// SettingError is a setting whose value fails a check. Components report
// it from their Config.Validate and constructors naming settings by their
// keys — the names flags, SYSMONSTM_ variables and config-file keys share —
// so that internal packages never name a command-line flag; the command
// layer shows the keys as flags with Flagged.
type SettingError struct {
	// Setting is the key of the setting at fault, e.g. "offline-after";
	// empty when Reason names the settings itself.
	Setting string
	// Value is the offending value as shown, e.g. "500ms" or `"nohost"`;
	// empty to show none.
	Value string
	// Reason says what is wrong and what would do. "{key}" in it names
	// another setting, e.g. "must be at least {retention-raw} (24h0m0s)".
	Reason string
	// Err is the underlying error, if any; it is shown after Reason.
	Err error
}

// Error names settings by their keys: "offline-after 500ms: must be at least 1s".
func (e *SettingError) Error() string { return e.render("") }

// Unwrap returns Err.
func (e *SettingError) Unwrap() error { return e.Err }

// Flag names settings as command-line flags: "--offline-after 500ms: must
// be at least 1s".
func (e *SettingError) Flag() string { return e.render("--") }

var settingRef = regexp.MustCompile(`\{([a-z0-9-]+)\}`)

func (e *SettingError) render(prefix string) string {
	reason := settingRef.ReplaceAllString(e.Reason, prefix+"$1")
	var b strings.Builder
	if e.Setting != "" {
		b.WriteString(prefix + e.Setting)
		if e.Value != "" {
			b.WriteString(" " + e.Value)
		}
		if reason != "" {
			b.WriteString(": " + reason)
		}
	} else {
		b.WriteString(reason)
	}
	if e.Err != nil {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Flagged returns err with the first SettingError in its chain shown as
// flags (SettingError.Flag), the text around it kept; errors.Is and
// errors.As still reach everything err wraps. Other errors are returned as
// they are.
func Flagged(err error) error {
	var se *SettingError
	if !errors.As(err, &se) {
		return err
	}
	return &flaggedError{msg: strings.Replace(err.Error(), se.Error(), se.Flag(), 1), err: err}
}

type flaggedError struct {
	msg string
	err error
}

func (e *flaggedError) Error() string { return e.msg }
func (e *flaggedError) Unwrap() error { return e.err }
