package notify

// Field kinds: how a form asks for a Config field.
const (
	KindText    = "text"    // one line of text
	KindURL     = "url"     // an http(s) URL
	KindSecret  = "secret"  // a password or token, typed hidden
	KindNumber  = "number"  // an integer between Min and Max
	KindList    = "list"    // comma-separated values, a JSON array
	KindHeaders = "headers" // "Name: value" lines, a JSON object
	KindChoice  = "choice"  // one of Options
	KindBool    = "bool"    // a checkbox; Label is its text
)

// Form describes a channel type's configuration for the web UI, which
// builds its notifier editor from the channel table (GET
// /api/notifier-types) instead of knowing the types itself.
type Form struct {
	Label  string  `json:"label"`  // the type's name for people, e.g. "E-mail (SMTP)"
	Fields []Field `json:"fields"` // the type's own fields, in form order
}

// Field is one Config field a channel type uses. Name, id, type and
// severities are common to every type and not listed.
type Field struct {
	Name     string `json:"name"` // the Config JSON key, e.g. "smtp_host"
	Label    string `json:"label"`
	Kind     string `json:"kind"`     // one of the Kind constants
	Required bool   `json:"required"` // the form must send a value; with Default, the hub has one too
	// Redacted fields come back as Redacted in answers; sending Redacted
	// back keeps the stored value (Channel.Redact).
	Redacted    bool     `json:"redacted,omitempty"`
	Help        string   `json:"help,omitempty"`
	Placeholder string   `json:"placeholder,omitempty"`
	Default     any      `json:"default,omitempty"` // the value a new notifier starts with
	Min         int      `json:"min,omitempty"`     // KindNumber's bounds
	Max         int      `json:"max,omitempty"`
	Options     []Option `json:"options,omitempty"` // KindChoice's values
}

// Option is one value of a KindChoice field.
type Option struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

// TypeForm is a channel type with its form, as GET /api/notifier-types
// answers it.
type TypeForm struct {
	Type string `json:"type"`
	Form
}

// TypeForms returns every channel type's form in the order the UI offers
// them.
func TypeForms() []TypeForm {
	rows := channels()
	out := make([]TypeForm, len(rows))
	for i, r := range rows {
		out[i] = TypeForm{Type: r.name, Form: r.channel.Form()}
	}
	return out
}

// hookURL is the URL field of the types that POST to one webhook URL.
func hookURL(help string) Field {
	return Field{Name: "url", Label: "URL", Kind: KindURL, Required: true, Redacted: true, Help: help, Placeholder: "the endpoint's URL"}
}
