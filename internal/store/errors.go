package store

import "fmt"

// QueryError is a query the caller got wrong (no metric, a range too large
// for its step, …), as opposed to a storage failure. It implements the
// ClientError() marker the HTTP layer maps to 400.
type QueryError struct{ msg string }

func (e *QueryError) Error() string { return e.msg }

// ClientError reports that the caller, not the store, is at fault.
func (e *QueryError) ClientError() bool { return true }

func queryError(msg string) error { return &QueryError{msg: msg} }

func queryErrorf(format string, args ...any) error {
	return &QueryError{msg: fmt.Sprintf(format, args...)}
}

// TooManySeries is the QueryError of a query of metric matching more than
// MaxSeries series.
func TooManySeries(metric string) error {
	return queryErrorf("query: %s matches more than %d series; narrow it with machine or label matchers", metric, MaxSeries)
}

// TooManyPoints is the QueryError of a query of metric that would return
// total points, more than MaxPoints.
func TooManyPoints(metric string, total int) error {
	return queryErrorf("query: %s would return %d points (limit %d); use a larger step, a shorter range or narrower matchers", metric, total, MaxPoints)
}

// TooManyExportSeries is the QueryError of an export matching more than
// MaxSeries series.
func TooManyExportSeries() error {
	return queryErrorf("export: more than %d series; narrow it with a metric", MaxSeries)
}
