package notify

import (
	"context"
	"time"
)

// Channel is one channel type: which configuration fields it takes, which
// of them are secret, and how a Message becomes the bytes its service
// reads. The Dispatcher owns everything common to all types (the checks of
// id, name, type and severities, retries, backoff, status, metrics), so a
// channel holds no state.
//
// A new channel type is one file with a type implementing Channel and one
// row in channels.
type Channel interface {
	// Validate checks the fields of c that depend on its type: those the
	// type needs, and that it sets none it does not use. Config.Validate
	// has checked id, name, type and severities before. The error names
	// the field by its JSON key, e.g. "url: required".
	Validate(c Config) error
	// Redact replaces the type's secret fields in c with Redacted; c is a
	// deep copy the caller owns. Fields that stay empty stay empty.
	Redact(c *Config)
	// Format builds m for c's service once; every attempt sends the same
	// Payload. now is the time stamped into the message where the format
	// has one. c has passed Validate.
	Format(c Config, m Message, now time.Time) (Payload, error)
	// Form describes the type's fields for the web UI's editor.
	Form() Form
}

// Payload is a message formatted for one channel.
type Payload interface {
	// Send delivers the payload to c's endpoint once, through d's HTTP
	// client or SMTP settings; the Dispatcher retries.
	Send(ctx context.Context, d *Dispatcher, c Config) error
}

// channelType is one row of the channel table.
type channelType struct {
	name    string // the Config.Type value
	channel Channel
}

// channels is the table of channel types, in the order the UI offers them.
func channels() []channelType {
	return []channelType{
		{TypeWebhook, webhookChannel{}},
		{TypeSlack, slackChannel{}},
		{TypeDiscord, discordChannel{}},
		{TypeNtfy, ntfyChannel{}},
		{TypeEmail, emailChannel{}},
	}
}

// Types returns the channel types in the order the UI offers them.
func Types() []string {
	rows := channels()
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.name
	}
	return out
}

// lookupChannel returns the Channel of type typ; false when there is none.
func lookupChannel(typ string) (Channel, bool) {
	for _, r := range channels() {
		if r.name == typ {
			return r.channel, true
		}
	}
	return nil, false
}
