package scrape

import (
	"errors"
	"fmt"
)

// Reasons of a failed scrape or of samples left out of one: the values of
// the reason label of scrape_errors_total.
const (
	ReasonConnect      = "connect"        // no connection, or it broke before the whole body was read
	ReasonTimeout      = "timeout"        // the scrape took longer than the target's timeout
	ReasonHTTPStatus   = "http_status"    // a status other than 200
	ReasonBodyTooLarge = "body_too_large" // the body exceeded body_limit
	ReasonContentType  = "content_type"   // an exposition format the agent does not read (protobuf)
	ReasonParse        = "parse"          // a syntax error in the exposition
	ReasonSampleLimit  = "sample_limit"   // more samples than sample_limit
	// ReasonInvalidSeries and ReasonTimestamp do not fail a scrape: the
	// other samples are kept.
	ReasonInvalidSeries = "invalid_series"          // series the hub would refuse, left out
	ReasonTimestamp     = "timestamp_out_of_window" // explicit timestamps too old or too far ahead, left out
)

// Error is a failed scrape and why.
type Error struct {
	Reason string // one of the Reason constants
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Reason, e.Err) }

func (e *Error) Unwrap() error { return e.Err }

// reasonOf returns the reason of err, ReasonConnect when it has none.
func reasonOf(err error) string {
	var se *Error
	if errors.As(err, &se) {
		return se.Reason
	}
	return ReasonConnect
}
