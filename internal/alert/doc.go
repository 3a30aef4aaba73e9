// Package alert owns alerting: rules (CRUD, provisioning, built-in
// defaults), their evaluation on the live sample stream, the per-series
// state machine inactive → pending → firing → resolved persisted in SQLite,
// acknowledgements, silences, and the routing, grouping and repetition of
// notifications, which internal/notify formats and delivers.
//
// Data flow: ingest → Engine.Observe (hot path, per batch, per-machine lock,
// cached per *live.Series) → state transitions queued in memory → Engine.Run
// (a ticker) persists them, publishes live events, promotes pending alerts,
// detects offline machines and stale series, and hands grouped messages to
// one delivery goroutine per channel.
//
// The package knows nothing of HTTP: internal/web/alertapi serves its API
// through small interfaces the Engine satisfies. Errors the API answers
// come in three kinds: *FieldError, ErrNotFound and ErrConflict.
package alert
