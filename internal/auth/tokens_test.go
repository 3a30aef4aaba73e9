package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestTokenFormatRoundTrip(t *testing.T) {
	id, secret, tok, err := newAgentToken()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "smt_"+id+"_") || len(tok) != agentTokenLen || len(secret) != 32 {
		t.Fatalf("token %q id %q", tok, id)
	}
	gid, gsecret, err := ParseToken(tok)
	if err != nil || gid != id || string(gsecret) != string(secret) {
		t.Fatalf("ParseToken(%q) = %q, %x, %v", tok, gid, gsecret, err)
	}
	bad := []string{
		"", "smt_", tok[:len(tok)-1], tok + "a", strings.Replace(tok, "smt_", "smx_", 1),
		strings.ToUpper(tok), tok[:4+16] + "-" + tok[4+17:], // wrong separator
		tok[:4] + "0" + tok[5:], // '0' is not base32
		tok[:len(tok)-1] + "b",  // non-canonical trailing bits (52 chars carry 260 bits)
		"smt_" + strings.Repeat("a", 16) + "_" + strings.Repeat("=", 52),
	}
	for _, b := range bad {
		if _, _, err := ParseToken(b); !errors.Is(err, ErrMalformedToken) {
			t.Errorf("ParseToken(%q) = %v, want ErrMalformedToken", b, err)
		}
	}
}

func TestTokenCreateVerifyRevoke(t *testing.T) {
	ctx := context.Background()
	d, _ := openDB(t)
	clk := newClock()
	s := openStore(t, d, clk, Options{})

	tk, tok, err := s.CreateToken(ctx, NewToken{Name: "rack 4"})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := s.VerifyAgent(ctx, tok, "web-1"); err != nil || id != tk.ID {
		t.Fatalf("VerifyAgent = %q, %v", id, err)
	}
	// Wrong secret with the right id, garbage, and nothing.
	id, _, _ := ParseToken(tok)
	_, _, other, _ := newAgentToken()
	forged := "smt_" + id + other[len("smt_")+16:]
	for _, c := range []struct {
		tok  string
		want error
	}{{forged, ErrInvalidToken}, {other, ErrInvalidToken}, {"hunter2", ErrInvalidToken}, {"", ErrNoToken}} {
		if _, err := s.VerifyAgent(ctx, c.tok, "web-1"); !errors.Is(err, c.want) {
			t.Errorf("VerifyAgent(%q) = %v, want %v", c.tok, err, c.want)
		}
	}
	// The secret is not in the database: only its HMAC.
	var n int
	if err := d.QueryRow(`SELECT COUNT(*) FROM agent_tokens WHERE hash = ? OR CAST(hash AS TEXT) LIKE ?`, []byte(tok), "%"+tok[21:]+"%").Scan(&n); err != nil || n != 0 {
		t.Fatalf("secret stored in clear: %d rows, %v", n, err)
	}

	if err := s.RevokeToken(ctx, tk.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyAgent(ctx, tok, "web-1"); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("after revoke: %v", err)
	}
	if err := s.RevokeToken(ctx, tk.ID); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	if err := s.RevokeToken(ctx, "aaaaaaaaaaaaaaaa"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	list, err := s.ListTokens(ctx)
	if err != nil || len(list) != 1 || !list[0].Revoked || list[0].Name != "rack 4" || list[0].LastUsedAt == nil {
		t.Fatalf("ListTokens = %+v, %v", list, err)
	}
}

func TestTokenExpiry(t *testing.T) {
	ctx := context.Background()
	d, _ := openDB(t)
	clk := newClock()
	s := openStore(t, d, clk, Options{})
	_, tok, err := s.CreateToken(ctx, NewToken{Expires: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(59 * time.Minute)
	if _, err := s.VerifyAgent(ctx, tok, "m"); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	clk.Add(time.Minute)
	if _, err := s.VerifyAgent(ctx, tok, "m"); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("at expiry: %v", err)
	}
	if list, _ := s.ListTokens(ctx); !list[0].Expired {
		t.Fatalf("list does not show expired: %+v", list[0])
	}
	for _, bad := range []time.Duration{-time.Second, time.Second, 11 * 365 * 24 * time.Hour} {
		if _, _, err := s.CreateToken(ctx, NewToken{Expires: bad}); err == nil {
			t.Errorf("Expires %s accepted", bad)
		}
	}
}

func TestTokenBoundToMachine(t *testing.T) {
	ctx := context.Background()
	d, _ := openDB(t)
	s := openStore(t, d, newClock(), Options{})
	_, tok, err := s.CreateToken(ctx, NewToken{Machine: "db-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyAgent(ctx, tok, "db-1"); err != nil {
		t.Fatal(err)
	}
	_, err = s.VerifyAgent(ctx, tok, "web-1")
	if !errors.Is(err, ErrWrongMachine) || !IsPermission(err) || !strings.Contains(err.Error(), `"db-1"`) {
		t.Fatalf("other machine: %v", err)
	}
	if _, _, err := s.CreateToken(ctx, NewToken{Machine: "bad\x00id"}); err == nil {
		t.Fatal("control character in machine accepted")
	}
}

func TestUnboundTokenMachineLimitIsPersistent(t *testing.T) {
	ctx := context.Background()
	d, _ := openDB(t)
	s := openStore(t, d, newClock(), Options{MaxMachinesPerToken: 3})
	_, tok, err := s.CreateToken(ctx, NewToken{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := s.VerifyAgent(ctx, tok, fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.VerifyAgent(ctx, tok, "m0"); err != nil {
		t.Fatalf("a known machine again: %v", err)
	}
	if _, err := s.VerifyAgent(ctx, tok, "m3"); !errors.Is(err, ErrMachineLimit) || !IsPermission(err) {
		t.Fatalf("fourth machine: %v", err)
	}
	// A restarted hub still counts the three.
	s2 := openStore(t, d, newClock(), Options{MaxMachinesPerToken: 3})
	if _, err := s2.VerifyAgent(ctx, tok, "m4"); !errors.Is(err, ErrMachineLimit) {
		t.Fatalf("after reopen: %v", err)
	}
	if _, err := s2.VerifyAgent(ctx, tok, "m2"); err != nil {
		t.Fatalf("known machine after reopen: %v", err)
	}
	if list, _ := s2.ListTokens(ctx); list[0].Machines != 3 {
		t.Fatalf("machines = %d", list[0].Machines)
	}
}

// TestTokenChangesFromAnotherProcess: the CLI writes the same database
// through its own Store; the hub's cache sees the change within its TTL.
func TestTokenChangesFromAnotherProcess(t *testing.T) {
	ctx := context.Background()
	d, _ := openDB(t)
	clk := newClock()
	hub := openStore(t, d, clk, Options{TokenCacheTTL: time.Second})
	cli := openStore(t, d, clk, Options{})
	if _, err := hub.VerifyAgent(ctx, "smt_aaaaaaaaaaaaaaaa_"+strings.Repeat("a", 52), "m"); !errors.Is(err, ErrInvalidToken) {
		t.Fatal(err) // loads the (empty) cache
	}
	tk, tok, err := cli.CreateToken(ctx, NewToken{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hub.VerifyAgent(ctx, tok, "m"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("within the TTL the cache may still miss it, got %v", err)
	}
	clk.Add(time.Second)
	if _, err := hub.VerifyAgent(ctx, tok, "m"); err != nil {
		t.Fatalf("after the TTL: %v", err)
	}
	if err := cli.RevokeToken(ctx, tk.ID); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	if _, err := hub.VerifyAgent(ctx, tok, "m"); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("revoked by the other process: %v", err)
	}
}

func TestLastUsedIsBatched(t *testing.T) {
	ctx := context.Background()
	d, _ := openDB(t)
	clk := newClock()
	s := openStore(t, d, clk, Options{})
	tk, tok, _ := s.CreateToken(ctx, NewToken{})
	for range 100 {
		if _, err := s.VerifyAgent(ctx, tok, "m"); err != nil {
			t.Fatal(err)
		}
	}
	var used *int64
	if err := d.QueryRow(`SELECT last_used_at FROM agent_tokens WHERE id = ?`, tk.ID).Scan(&used); err != nil || used != nil {
		t.Fatalf("written before the flush: %v, %v", used, err)
	}
	if err := s.FlushLastUsed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.QueryRow(`SELECT last_used_at FROM agent_tokens WHERE id = ?`, tk.ID).Scan(&used); err != nil || used == nil || *used != clk.Now().UnixMilli() {
		t.Fatalf("after flush: %v, %v", used, err)
	}
}

func TestLocalAgentCredential(t *testing.T) {
	ctx := context.Background()
	d, _ := openDB(t)
	s := openStore(t, d, newClock(), Options{})
	tok, err := s.SetLocalAgent("laptop")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.SetLocalAgent("laptop"); again != tok {
		t.Fatal("second call made a new credential")
	}
	if _, err := s.VerifyAgent(ctx, tok, "laptop"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyAgent(ctx, tok, "other"); !errors.Is(err, ErrWrongMachine) {
		t.Fatalf("local credential for another machine: %v", err)
	}
	var n int
	if err := d.QueryRow(`SELECT COUNT(*) FROM agent_tokens`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("local credential stored: %d", n)
	}
	other := openStore(t, d, newClock(), Options{})
	if _, err := other.VerifyAgent(ctx, tok, "laptop"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("another store accepted the in-memory credential: %v", err)
	}
}

func TestParseExpiry(t *testing.T) {
	f := func(in string, want time.Duration, ok bool) {
		t.Helper()
		got, err := ParseExpiry(in)
		if (err == nil) != ok || got != want {
			t.Errorf("ParseExpiry(%q) = %s, %v", in, got, err)
		}
	}
	f("", 0, true)
	f("never", 0, true)
	f("720h", 720*time.Hour, true)
	f("30d", 30*24*time.Hour, true)
	f("0d", 0, false)
	f("-1h", 0, false)
	f("1.5d", 0, false)
	f("99999999999d", 0, false)
	f("soon", 0, false)
}

// TestCheckAgentToken: the token-only check the hub runs before it reads
// an agent's hello accepts what VerifyAgent would accept for some machine,
// refuses what it refuses for every machine, and records nothing.
func TestCheckAgentToken(t *testing.T) {
	ctx := context.Background()
	d, _ := openDB(t)
	clk := newClock()
	s := openStore(t, d, clk, Options{MaxMachinesPerToken: 1})
	_, unbound, err := s.CreateToken(ctx, NewToken{})
	if err != nil {
		t.Fatal(err)
	}
	_, bound, err := s.CreateToken(ctx, NewToken{Machine: "db-1"})
	if err != nil {
		t.Fatal(err)
	}
	revokedTk, revoked, err := s.CreateToken(ctx, NewToken{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, revokedTk.ID); err != nil {
		t.Fatal(err)
	}
	_, expiring, err := s.CreateToken(ctx, NewToken{Expires: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	local, err := s.SetLocalAgent("laptop")
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	id, _, _ := ParseToken(unbound)
	_, _, other, _ := newAgentToken()
	for _, c := range []struct {
		tok  string
		want error
	}{
		{unbound, nil}, {bound, nil}, {local, nil},
		{revoked, ErrTokenRevoked}, {expiring, ErrTokenExpired},
		{"smt_" + id + other[len("smt_")+16:], ErrInvalidToken}, {other, ErrInvalidToken},
		{"hunter2", ErrInvalidToken}, {"", ErrNoToken},
	} {
		err := s.CheckAgentToken(ctx, c.tok)
		if (c.want == nil && err != nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("CheckAgentToken(%.20q) = %v, want %v", c.tok, err, c.want)
		}
	}
	// Nothing recorded: the unbound token may still take its one machine,
	// and it has no last use.
	list, err := s.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range list {
		if tk.LastUsedAt != nil || tk.Machines != 0 {
			t.Fatalf("CheckAgentToken recorded a use: %+v", tk)
		}
	}
	if _, err := s.VerifyAgent(ctx, unbound, "web-1"); err != nil {
		t.Fatalf("VerifyAgent after CheckAgentToken: %v", err)
	}
}
