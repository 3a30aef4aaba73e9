package edge

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sysmonstm/sysmonstm/internal/config"
)

// MinKeyDistinct is the fewest different characters a publish key must
// have: it rejects placeholders such as 16 spaces or "aaaa…" while a random
// 16-character hex key fails it only about 3 times in 100,000 (at 32 hex
// characters, practically never).
const MinKeyDistinct = 6

// ValidateKey checks a publish key: at least MinKeyLength characters, no
// leading or trailing space (which a config file or `echo` adds by
// accident and which would not survive an HTTP header), no control
// characters, and at least MinKeyDistinct different characters. The error
// reads after the key's name ("key is 9 characters, …", see keyError) and
// says how to make a good key.
func ValidateKey(key string) error {
	const hint = "use a random secret, e.g. from `openssl rand -hex 32`"
	if strings.TrimSpace(key) == "" {
		if key == "" {
			return fmt.Errorf("is empty; %s", hint)
		}
		return fmt.Errorf("is only whitespace; %s", hint)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("is not valid UTF-8; %s", hint)
	}
	if strings.TrimSpace(key) != key {
		return errors.New("starts or ends with whitespace (a newline from a file?): remove it")
	}
	distinct := map[rune]bool{}
	n := 0
	for _, r := range key {
		if unicode.IsControl(r) {
			return fmt.Errorf("contains a control character (%U); %s", r, hint)
		}
		distinct[r] = true
		n++
	}
	if n < MinKeyLength {
		return fmt.Errorf("is %d characters, need at least %d: %s", n, MinKeyLength, hint)
	}
	if len(distinct) < MinKeyDistinct {
		return fmt.Errorf("uses only %d different characters, need at least %d: it is too easy to guess; %s", len(distinct), MinKeyDistinct, hint)
	}
	return nil
}

// keyError names the setting whose key ValidateKey rejected: "key is 9
// characters, …".
func keyError(setting string, err error) error {
	return &config.SettingError{Reason: "{" + setting + "} " + err.Error()}
}
