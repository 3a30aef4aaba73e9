package db

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// WatchOptions configure Watch.
type WatchOptions struct {
	// Resync calls OnChange("") this often even without a notification,
	// as a safety net; default 30 s.
	Resync time.Duration
	// Retry is the wait before reconnecting after the listening connection
	// failed; default 1 s (doubling up to 10 s while it keeps failing).
	Retry  time.Duration
	Logger *slog.Logger
	// OnChange is called, one call at a time, with the table a committed
	// write changed, or "" for "anything may have changed": after
	// (re)connecting, when notifications may have been missed, and every
	// Resync.
	OnChange func(table string)
	// OnState, if set, is told whether the listening connection is up.
	OnState func(up bool)
}

// Watch LISTENs on Channel on a connection of its own to the database at
// dsn and reports changes (WatchOptions.OnChange) until ctx is done. The
// schema's triggers NOTIFY the name of a changed table when a write
// commits, from any hub or admin command. A lost connection is re-made;
// since notifications sent meanwhile are lost, every reconnect reports "".
func Watch(ctx context.Context, dsn string, opts WatchOptions) error {
	cfg, err := ParsePostgres(dsn)
	if err != nil {
		return err
	}
	if opts.Resync <= 0 {
		opts.Resync = 30 * time.Second
	}
	if opts.Retry <= 0 {
		opts.Retry = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	state := func(up bool) {
		if opts.OnState != nil {
			opts.OnState(up)
		}
	}
	wait := opts.Retry
	first := true
	for ctx.Err() == nil {
		err := listen(ctx, cfg, opts, func() {
			if !first {
				opts.Logger.Info("PostgreSQL change notifications restored; re-reading cached metadata")
			}
			first = false
			wait = opts.Retry
			state(true)
			opts.OnChange("")
		})
		if ctx.Err() != nil {
			break
		}
		state(false)
		opts.Logger.Warn("PostgreSQL change notifications lost; reconnecting (cached metadata is used meanwhile)", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
	return nil
}

// listen runs one LISTEN connection until it fails or ctx is done.
func listen(ctx context.Context, cfg *pgx.ConnConfig, opts WatchOptions, up func()) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{Channel}.Sanitize()); err != nil {
		return err
	}
	up()
	next := time.Now().Add(opts.Resync)
	for {
		wctx, cancel := context.WithDeadline(ctx, next)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			opts.OnChange(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case wctx.Err() != nil:
			// Resync time. A ping also finds a connection that died quietly.
			if err := conn.Ping(ctx); err != nil {
				return err
			}
			opts.OnChange("")
			next = time.Now().Add(opts.Resync)
		default:
			return err
		}
	}
}
