package auth

import (
	"context"
	"database/sql"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/db/dbtest"
)

// productionCost is bcryptCost as the package sets it.
var productionCost int

func TestMain(m *testing.M) {
	productionCost = bcryptCost
	bcryptCost = 4 // bcrypt.MinCost: the tests check behaviour, not work factor
	os.Exit(m.Run())
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openDB opens a fresh metadata database in a temp dir.
func openDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	dir := t.TempDir()
	return dbtest.OpenAt(t, dbtest.Backend(), dir), dir
}

// openStore opens a Store on d with clk.
func openStore(t testing.TB, d *sql.DB, clk *clock, opts Options) *Store {
	t.Helper()
	if clk != nil {
		opts.Now = clk.Now
	}
	s, err := Open(context.Background(), d, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
