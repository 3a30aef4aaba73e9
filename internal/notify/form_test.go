package notify

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestTypeForms checks each type's form against its Channel: every field
// is a Config JSON key, the fields marked redacted are exactly those the
// type's Redact hides, a config with every field filled in passes
// Validate and so does one with only the required fields, and leaving out
// a required field without a default fails naming that field.
func TestTypeForms(t *testing.T) {
	keys := map[string]bool{}
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		keys[strings.Split(ct.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	kinds := []string{KindText, KindURL, KindSecret, KindNumber, KindList, KindHeaders, KindChoice, KindBool}
	forms := TypeForms()
	got := make([]string, len(forms))
	for i, f := range forms {
		got[i] = f.Type
	}
	if !slices.Equal(got, Types()) {
		t.Fatalf("TypeForms types %v, want %v", got, Types())
	}
	for _, tf := range forms {
		if tf.Label == "" || len(tf.Fields) == 0 {
			t.Errorf("%s: form without label or fields: %+v", tf.Type, tf.Form)
		}
		full := map[string]any{"name": "n", "type": tf.Type}
		for _, f := range tf.Fields {
			switch {
			case !keys[f.Name] || f.Name == "name" || f.Name == "type" || f.Name == "id" || f.Name == "severities":
				t.Errorf("%s: field %q is not a type's own Config key", tf.Type, f.Name)
			case !slices.Contains(kinds, f.Kind):
				t.Errorf("%s.%s: unknown kind %q", tf.Type, f.Name, f.Kind)
			case f.Label == "":
				t.Errorf("%s.%s: no label", tf.Type, f.Name)
			case f.Kind == KindChoice && !slices.ContainsFunc(f.Options, func(o Option) bool { return o.Value == f.Default }):
				t.Errorf("%s.%s: default %v is not one of its options", tf.Type, f.Name, f.Default)
			case f.Kind == KindNumber && (f.Min > f.Max || f.Default != nil && (f.Default.(int) < f.Min || f.Default.(int) > f.Max)):
				t.Errorf("%s.%s: bounds %d..%d, default %v", tf.Type, f.Name, f.Min, f.Max, f.Default)
			}
			full[f.Name] = sampleValue(tf.Type, f)
		}
		c := configOf(t, full)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: every field filled in: %v", tf.Type, err)
		}
		least := map[string]any{"name": "n", "type": tf.Type}
		for _, f := range tf.Fields {
			if f.Required {
				least[f.Name] = full[f.Name]
			}
		}
		if err := configOf(t, least).Validate(); err != nil {
			t.Errorf("%s: only the required fields filled in: %v", tf.Type, err)
		}
		ch, _ := lookupChannel(tf.Type)
		r := c
		r.Headers = maps.Clone(c.Headers)
		ch.Redact(&r)
		for _, f := range tf.Fields {
			if hidden := redactedKey(t, c, r, f.Name); hidden != f.Redacted {
				t.Errorf("%s.%s: redacted %v in the form, %v by Redact", tf.Type, f.Name, f.Redacted, hidden)
			}
			if !f.Required || f.Default != nil {
				continue // the hub fills in a default, the form always sends one
			}
			without := map[string]any{}
			for k, v := range full {
				if k != f.Name {
					without[k] = v
				}
			}
			if err := configOf(t, without).Validate(); err == nil || !strings.HasPrefix(err.Error(), f.Name+":") {
				t.Errorf("%s: without required %s: %v, want an error naming it", tf.Type, f.Name, err)
			}
		}
	}
}

// sampleValue is a valid value for field f of type typ, as the form sends it.
func sampleValue(typ string, f Field) any {
	switch f.Kind {
	case KindURL:
		if typ == TypeNtfy {
			return "https://ntfy.example.com/alerts"
		}
		return "https://hooks.example.com/x"
	case KindNumber, KindChoice:
		return f.Default
	case KindList:
		return []string{"ops@example.com"}
	case KindHeaders:
		return map[string]string{"X-Key": "v"}
	case KindBool:
		return true
	case KindSecret:
		return "s3cret-value"
	}
	if f.Name == "from" {
		return "sysmonstm@example.com"
	}
	if f.Name == "smtp_host" {
		return "smtp.example.com"
	}
	return "user"
}

func configOf(t *testing.T, m map[string]any) Config {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// redactedKey reports whether Redact changed the field with JSON key key.
func redactedKey(t *testing.T, before, after Config, key string) bool {
	t.Helper()
	var a, b map[string]any
	ab, _ := json.Marshal(before)
	bb, _ := json.Marshal(after)
	if json.Unmarshal(ab, &a) != nil || json.Unmarshal(bb, &b) != nil {
		t.Fatal("config does not round-trip through JSON")
	}
	return !reflect.DeepEqual(a[key], b[key])
}
