package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestPasswordsAreBcrypted(t *testing.T) {
	ctx := context.Background()
	d, _ := openDB(t)
	s := openStore(t, d, newClock(), Options{})
	if _, err := s.AddUser(ctx, "alice", "correct horse", RoleViewer); err != nil {
		t.Fatal(err)
	}
	var hash string
	if err := d.QueryRow(`SELECT password_hash FROM users WHERE name = 'alice'`).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost != bcryptCost || strings.Contains(hash, "horse") {
		t.Fatalf("hash %q cost %d %v", hash, cost, err)
	}
	if u, err := s.CheckPassword(ctx, "alice", "correct horse"); err != nil || u.Role != RoleViewer {
		t.Fatalf("right password: %+v %v", u, err)
	}
	for _, c := range [][2]string{{"alice", "wrong horse"}, {"bob", "correct horse"}, {"ALICE", "correct horse"}} {
		if _, err := s.CheckPassword(ctx, c[0], c[1]); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("CheckPassword(%q, %q) = %v", c[0], c[1], err)
		}
	}
}

func TestProductionBcryptCost(t *testing.T) {
	if productionCost != 12 {
		t.Fatalf("bcrypt cost %d, want 12", productionCost)
	}
}

func TestUserValidation(t *testing.T) {
	ctx := context.Background()
	d, _ := openDB(t)
	s := openStore(t, d, newClock(), Options{})
	f := func(name, pw string, role Role, want string) {
		t.Helper()
		_, err := s.AddUser(ctx, name, pw, role)
		var inv *InvalidError
		if !errors.As(err, &inv) || !strings.Contains(err.Error(), want) {
			t.Errorf("AddUser(%q, %q, %q) = %v, want invalid %q", name, pw, role, err, want)
		}
	}
	f("", "password1", RoleAdmin, "username: empty")
	f("-x", "password1", RoleAdmin, "starting with a letter")
	f("a b", "password1", RoleAdmin, "use letters")
	f("<script>", "password1", RoleAdmin, "use letters")
	f(strings.Repeat("a", 65), "password1", RoleAdmin, "limit 64")
	f("ok", "short", RoleAdmin, "need at least 8")
	f("ok", "ääääääa", RoleAdmin, "7 characters") // 14 bytes, 7 characters
	f("ok", strings.Repeat("x", 73), RoleAdmin, "limit 72")
	f("ok", "password1", "root", `role "root"`)
	if _, err := s.AddUser(ctx, "ok", "password1", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddUser(ctx, "ok", "password2", RoleViewer); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestLastAdminCannotBeRemovedOrDemoted(t *testing.T) {
	ctx := context.Background()
	d, _ := openDB(t)
	s := openStore(t, d, newClock(), Options{})
	s.AddUser(ctx, "root", "password1", RoleAdmin)
	s.AddUser(ctx, "view", "password1", RoleViewer)
	viewer := RoleViewer
	if _, err := s.UpdateUser(ctx, "root", &viewer, nil); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("demote last admin: %v", err)
	}
	if err := s.RemoveUser(ctx, "root"); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("remove last admin: %v", err)
	}
	admin := RoleAdmin
	if _, err := s.UpdateUser(ctx, "view", &admin, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateUser(ctx, "root", &viewer, nil); err != nil {
		t.Fatalf("demote with another admin: %v", err)
	}
	if err := s.RemoveUser(ctx, "view"); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("remove the new last admin: %v", err)
	}
	if err := s.RemoveUser(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveUser(ctx, "root"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
	if _, err := s.UpdateUser(ctx, "ghost", &admin, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	if _, err := s.UpdateUser(ctx, "view", nil, nil); err == nil {
		t.Fatal("empty update accepted")
	}
}

func TestPasswordChangeAndRemovalEndSessions(t *testing.T) {
	ctx := context.Background()
	d, _ := openDB(t)
	s := openStore(t, d, newClock(), Options{})
	s.AddUser(ctx, "root", "password1", RoleAdmin)
	s.AddUser(ctx, "amy", "password1", RoleAdmin)
	rootTok, _, _ := s.CreateSession(ctx, "root")
	amyTok, _, _ := s.CreateSession(ctx, "amy")
	pw := "password2"
	if _, err := s.UpdateUser(ctx, "root", nil, &pw); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupSession(ctx, rootTok); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session survived a password change: %v", err)
	}
	if _, err := s.CheckPassword(ctx, "root", "password2"); err != nil {
		t.Fatal(err)
	}
	// A role change keeps the session but applies at once.
	viewer := RoleViewer
	if _, err := s.UpdateUser(ctx, "amy", &viewer, nil); err != nil {
		t.Fatal(err)
	}
	if sess, err := s.LookupSession(ctx, amyTok); err != nil || sess.Role != RoleViewer {
		t.Fatalf("after role change: %+v %v", sess, err)
	}
	if err := s.RemoveUser(ctx, "amy"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupSession(ctx, amyTok); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session survived user removal: %v", err)
	}
}

func TestBootstrapRandomPassword(t *testing.T) {
	ctx := context.Background()
	d, dir := openDB(t)
	s := openStore(t, d, newClock(), Options{})
	created, pw, file, err := s.Bootstrap(ctx, dir, "")
	if err != nil || !created || len(pw) < 20 || file != filepath.Join(dir, "admin-password") {
		t.Fatalf("Bootstrap = %v %q %q %v", created, pw, file, err)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("password file: %v %v", st, err)
	}
	b, _ := os.ReadFile(file)
	if strings.TrimSpace(string(b)) != pw {
		t.Fatalf("file holds %q, want %q", b, pw)
	}
	if u, err := s.CheckPassword(ctx, "admin", pw); err != nil || u.Role != RoleAdmin {
		t.Fatalf("admin login: %v", err)
	}
	if created, _, _, err := s.Bootstrap(ctx, dir, ""); created || err != nil {
		t.Fatalf("second bootstrap: %v %v", created, err)
	}
}

func TestBootstrapFromEnvironment(t *testing.T) {
	ctx := context.Background()
	d, dir := openDB(t)
	s := openStore(t, d, newClock(), Options{})
	if _, _, _, err := s.Bootstrap(ctx, dir, "short"); err == nil || !strings.Contains(err.Error(), "SYSMONSTM_ADMIN_PASSWORD") {
		t.Fatalf("short env password: %v", err)
	}
	created, pw, file, err := s.Bootstrap(ctx, dir, "from-the-env")
	if err != nil || !created || pw != "" || file != "" {
		t.Fatalf("Bootstrap = %v %q %q %v", created, pw, file, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "admin-password")); !os.IsNotExist(err) {
		t.Fatalf("password file written for an env password: %v", err)
	}
	if _, err := s.CheckPassword(ctx, "admin", "from-the-env"); err != nil {
		t.Fatal(err)
	}
}

func TestSessionExpiry(t *testing.T) {
	ctx := context.Background()
	d, _ := openDB(t)
	clk := newClock()
	s := openStore(t, d, clk, Options{SessionIdle: time.Hour, SessionMaxAge: 3 * time.Hour})
	s.AddUser(ctx, "u", "password1", RoleViewer)
	tok, sess, err := s.CreateSession(ctx, "u")
	if err != nil || len(tok) != 43 || len(sess.CSRF) != 43 || !sess.ExpiresAt.Equal(clk.Now().Add(time.Hour)) {
		t.Fatalf("CreateSession = %q %+v %v", tok, sess, err)
	}
	var stored []byte
	d.QueryRow(`SELECT id_hash FROM sessions`).Scan(&stored)
	if string(stored) == tok || len(stored) != 32 {
		t.Fatalf("session id stored as %q", stored)
	}
	// Used every 50 minutes it lives on, up to the absolute limit.
	for range 3 {
		clk.Add(50 * time.Minute)
		if _, err := s.LookupSession(ctx, tok); err != nil {
			t.Fatalf("at %s: %v", clk.Now(), err)
		}
	}
	clk.Add(30 * time.Minute) // 3h after login
	if _, err := s.LookupSession(ctx, tok); !errors.Is(err, ErrNotFound) {
		t.Fatalf("past the absolute limit: %v", err)
	}
	tok2, _, _ := s.CreateSession(ctx, "u")
	clk.Add(time.Hour)
	if _, err := s.LookupSession(ctx, tok2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("idle for the idle limit: %v", err)
	}
	tok3, _, _ := s.CreateSession(ctx, "u")
	if err := s.DeleteSession(ctx, tok3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupSession(ctx, tok3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after logout: %v", err)
	}
	for _, bad := range []string{"", "x", tok3 + "x", strings.Repeat("!", 43)} {
		if _, err := s.LookupSession(ctx, bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupSession(%q) = %v", bad, err)
		}
	}
}

func TestDeleteExpiredSessions(t *testing.T) {
	ctx := context.Background()
	d, _ := openDB(t)
	clk := newClock()
	s := openStore(t, d, clk, Options{SessionIdle: time.Hour})
	s.AddUser(ctx, "u", "password1", RoleViewer)
	s.CreateSession(ctx, "u")
	clk.Add(30 * time.Minute)
	s.CreateSession(ctx, "u")
	clk.Add(31 * time.Minute)
	if n, err := s.DeleteExpiredSessions(ctx); err != nil || n != 1 {
		t.Fatalf("deleted %d, %v", n, err)
	}
}
