package auth

import (
	"context"
	"testing"

	"github.com/sysmonstm/sysmonstm/internal/db/dbtest"
)

// BenchmarkMetadataBackends: what the hub asks the metadata database on
// its hot paths, on SQLite and on PostgreSQL (127.0.0.1): a session check
// (every authenticated HTTP request), a token check of a connected agent
// (served from the cache), re-reading the token table after a change
// (what NOTIFY triggers) with 100 tokens, and creating a token.
func BenchmarkMetadataBackends(b *testing.B) {
	for _, backend := range dbtest.Backends {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			st := openStore(b, dbtest.Open(b, backend), nil, Options{})
			if _, err := st.AddUser(ctx, "alice", "alice-password-1", RoleAdmin); err != nil {
				b.Fatal(err)
			}
			sess, _, err := st.CreateSession(ctx, "alice")
			if err != nil {
				b.Fatal(err)
			}
			var secret string
			for range 100 {
				if _, secret, err = st.CreateToken(ctx, NewToken{Machine: "m1"}); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("session-lookup", func(b *testing.B) {
				for b.Loop() {
					if _, err := st.LookupSession(ctx, sess); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("token-check-cached", func(b *testing.B) {
				for b.Loop() {
					if _, err := st.VerifyAgent(ctx, secret, "m1"); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("token-table-reread", func(b *testing.B) {
				for b.Loop() {
					st.InvalidateTokens()
					if err := st.CheckAgentToken(ctx, secret); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("token-create", func(b *testing.B) {
				for b.Loop() {
					if _, _, err := st.CreateToken(ctx, NewToken{}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
