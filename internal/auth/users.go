package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// User is a dashboard user (never its password hash).
type User struct {
	Name      string    `json:"username"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created"`
	UpdatedAt time.Time `json:"updated"`
}

// Password limits: bcrypt reads at most 72 bytes.
const (
	MinPasswordLength = 8
	MaxPasswordBytes  = 72
	maxUserName       = 64
)

// bcryptCost is the work factor of stored passwords. Tests lower it
// through setBcryptCost; nothing else changes it.
var bcryptCost = 12

// dummyHash is compared against when the user does not exist, so an
// unknown name costs the same bcrypt work as a wrong password.
var dummyHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte("sysmonstm-dummy-password"), bcryptCost)
	if err != nil {
		panic(err)
	}
	return h
})

// ValidateUserName checks a user name: 1 to 64 characters of letters,
// digits, '.', '_', '-' and '@', starting with a letter or digit.
func ValidateUserName(name string) error {
	if name == "" {
		return invalidf("username: empty")
	}
	if len(name) > maxUserName {
		return invalidf("username: %d bytes, limit %d", len(name), maxUserName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i > 0 {
			ok = ok || c == '.' || c == '_' || c == '-' || c == '@'
		}
		if !ok {
			return invalidf("username %q: use letters, digits and . _ - @, starting with a letter or digit", name)
		}
	}
	return nil
}

// ValidatePassword checks a new password's length: at least 8 characters,
// at most 72 bytes.
func ValidatePassword(pw string) error {
	if !utf8.ValidString(pw) {
		return invalidf("password: not valid UTF-8")
	}
	if n := utf8.RuneCountInString(pw); n < MinPasswordLength {
		return invalidf("password: %d characters, need at least %d", n, MinPasswordLength)
	}
	if len(pw) > MaxPasswordBytes {
		return invalidf("password: %d bytes, limit %d", len(pw), MaxPasswordBytes)
	}
	return nil
}

// ParseRole parses "admin" or "viewer".
func ParseRole(s string) (Role, error) {
	switch Role(s) {
	case RoleAdmin, RoleViewer:
		return Role(s), nil
	}
	return "", invalidf("role %q: want admin or viewer", s)
}

func hashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcryptCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// AddUser creates a user.
func (s *Store) AddUser(ctx context.Context, name, password string, role Role) (User, error) {
	if err := ValidateUserName(name); err != nil {
		return User{}, err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return User{}, err
	}
	if err := ValidatePassword(password); err != nil {
		return User{}, err
	}
	h, err := hashPassword(password)
	if err != nil {
		return User{}, err
	}
	now := ms(s.now())
	res, err := s.db.ExecContext(ctx, `INSERT INTO users(name, role, password_hash, created_at, updated_at) VALUES(?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING`,
		name, string(role), h, now, now)
	if err != nil {
		return User{}, fmt.Errorf("add user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return User{}, fmt.Errorf("user %q: %w", name, ErrExists)
	}
	return User{Name: name, Role: role, CreatedAt: fromMS(now), UpdatedAt: fromMS(now)}, nil
}

// ListUsers returns every user by name.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, role, created_at, updated_at FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		var u User
		var c, up int64
		if err := rows.Scan(&u.Name, &u.Role, &c, &up); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		u.CreatedAt, u.UpdatedAt = fromMS(c), fromMS(up)
		out = append(out, u)
	}
	return out, rows.Err()
}

// CountUsers returns the number of users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// UpdateUser changes a user's role and/or password (nil leaves it). A new
// password ends all the user's sessions. Demoting the last admin is
// ErrLastAdmin.
func (s *Store) UpdateUser(ctx context.Context, name string, role *Role, password *string) (User, error) {
	if role == nil && password == nil {
		return User{}, invalidf("nothing to change: give role and/or password")
	}
	if role != nil {
		if _, err := ParseRole(string(*role)); err != nil {
			return User{}, err
		}
	}
	var hash string
	if password != nil {
		if err := ValidatePassword(*password); err != nil {
			return User{}, err
		}
		h, err := hashPassword(*password)
		if err != nil {
			return User{}, err
		}
		hash = h
	}
	var u User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var c int64
		if err := tx.QueryRowContext(ctx, `SELECT name, role, created_at FROM users WHERE name = ?`, name).Scan(&u.Name, &u.Role, &c); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("user %q: %w", name, ErrNotFound)
			}
			return err
		}
		u.CreatedAt = fromMS(c)
		now := ms(s.now())
		u.UpdatedAt = fromMS(now)
		if role != nil && *role != u.Role {
			if u.Role == RoleAdmin {
				if err := lastAdminCheck(ctx, tx); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE users SET role = ?, updated_at = ? WHERE name = ?`, string(*role), now, name); err != nil {
				return err
			}
			u.Role = *role
		}
		if password != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?`, hash, now, name); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_name = ?`, name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return User{}, wrapStoreErr("update user", err)
	}
	return u, nil
}

// RemoveUser deletes a user and its sessions; removing the last admin is
// ErrLastAdmin.
func (s *Store) RemoveUser(ctx context.Context, name string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var role Role
		if err := tx.QueryRowContext(ctx, `SELECT role FROM users WHERE name = ?`, name).Scan(&role); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("user %q: %w", name, ErrNotFound)
			}
			return err
		}
		if role == RoleAdmin {
			if err := lastAdminCheck(ctx, tx); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_name = ?`, name); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
		return err
	})
	return wrapStoreErr("remove user", err)
}

// lastAdminCheck fails with ErrLastAdmin when there is one admin left.
// It runs inside the write transaction (BEGIN IMMEDIATE), so two
// concurrent demotions cannot both pass.
func lastAdminCheck(ctx context.Context, tx *sql.Tx) error {
	var admins int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE role = 'admin'`).Scan(&admins); err != nil {
		return err
	}
	if admins <= 1 {
		return ErrLastAdmin
	}
	return nil
}

func wrapStoreErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var inv *InvalidError
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrLastAdmin) || errors.Is(err, ErrExists) || errors.As(err, &inv) {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// CheckPassword returns the user if password is theirs, else
// ErrBadCredentials. An unknown user costs the same bcrypt work.
func (s *Store) CheckPassword(ctx context.Context, name, password string) (User, error) {
	var u User
	var hash string
	var c, up int64
	err := s.db.QueryRowContext(ctx, `SELECT name, role, password_hash, created_at, updated_at FROM users WHERE name = ?`, name).
		Scan(&u.Name, &u.Role, &hash, &c, &up)
	if errors.Is(err, sql.ErrNoRows) || len(name) > maxUserName {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, fmt.Errorf("check password: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return User{}, ErrBadCredentials
	}
	u.CreatedAt, u.UpdatedAt = fromMS(c), fromMS(up)
	return u, nil
}

// AdminPasswordFile is the bootstrap password's file in the data directory.
const AdminPasswordFile = "admin-password"

// Bootstrap creates the first user, "admin", when there are no users. The
// password is envPassword when set; otherwise a random one, written to
// <dataDir>/admin-password (mode 0600) and returned so the caller can show
// it once. created is false when users already existed.
func (s *Store) Bootstrap(ctx context.Context, dataDir, envPassword string) (created bool, password, file string, err error) {
	n, err := s.CountUsers(ctx)
	if err != nil || n > 0 {
		return false, "", "", err
	}
	password = envPassword
	if password == "" {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return false, "", "", fmt.Errorf("generate admin password: %w", err)
		}
		password = base64.RawURLEncoding.EncodeToString(b)
		file = filepath.Join(dataDir, AdminPasswordFile)
		if err := writeSecretFile(file, password+"\n"); err != nil {
			return false, "", "", err
		}
	} else if err := ValidatePassword(password); err != nil {
		return false, "", "", fmt.Errorf("SYSMONSTM_ADMIN_PASSWORD: %w", err)
	}
	if _, err := s.AddUser(ctx, "admin", password, RoleAdmin); err != nil {
		if file != "" {
			_ = os.Remove(file)
		}
		if errors.Is(err, ErrExists) {
			return false, "", "", nil // another process won the race
		}
		return false, "", "", err
	}
	if envPassword != "" {
		password = "" // the operator knows it; do not echo it
	}
	return true, password, file, nil
}

// writeSecretFile writes content to path with mode 0600, replacing any file.
func writeSecretFile(path, content string) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
