package e2e

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sysmonstm/sysmonstm/internal/db"
	"github.com/sysmonstm/sysmonstm/internal/db/dbtest"
	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// TestPostgresTwoHubs: two hub processes share one PostgreSQL database
// (SYSMONSTM_POSTGRES, which the token CLI also reads). A user created on
// hub A logs in on hub B; a token created on A streams an agent to B; a
// rule created on A fires on B, and acknowledging that alert on A reaches
// B; revoked on A, B closes the stream within about a second. Then every
// connection to the database is killed (pg_terminate_backend): agents keep
// streaming, and both hubs recover by themselves (logins work again,
// changes propagate again).
func TestPostgresTwoHubs(t *testing.T) {
	t.Parallel()
	const password = "e2e-postgres-admin-pw"
	dsn := usePostgres(t, password)
	a := startHub(t, t.TempDir(), "", "")
	b := startHub(t, t.TempDir(), "", "")
	apiA := newAlertsClient(t, a, password)
	apiB := newAlertsClient(t, b, password)
	if strings.Count(a.out.String()+b.out.String(), "first start: created user") != 1 {
		t.Errorf("the first admin was not created exactly once:\nA:\n%s\nB:\n%s", truncate(a.out.String()), truncate(b.out.String()))
	}

	// A user created on A logs in on B.
	apiA.must(201, "POST", "/api/users", map[string]string{"username": "alice", "password": "alice-password-1", "role": "viewer"}, nil)
	loginB := func(user, pw string) int {
		c := &alertsClient{t: t, base: "http://" + b.http}
		return c.do("POST", "/api/auth/login", map[string]string{"username": user, "password": pw}, nil)
	}
	if code := loginB("alice", "alice-password-1"); code != http.StatusOK {
		t.Fatalf("alice, created on A, logging in on B: status %d", code)
	}

	// A token created on A streams to B.
	var tok struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	apiA.must(201, "POST", "/api/tokens", map[string]string{"machine": "pg-agent", "name": "made on A"}, &tok)
	agent := startAgent(t, b, "pg-agent", "--token", tok.Token)
	waitOnline(t, b, "pg-agent")

	// A rule created on A fires on B, which evaluates the agent's stream.
	var rule struct {
		ID string `json:"id"`
	}
	created := time.Now()
	apiA.must(201, "POST", "/api/rules", map[string]any{
		"name": "made on A", "metric": `cpu_usage_percent{cpu="total"}`, "op": ">=", "threshold": 0,
		"machines": []string{"pg-agent"}, "severity": "warning",
	}, &rule)
	var list []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	testutil.WaitFor(t, 20*time.Second, "B fires the rule made on A", func() error {
		apiB.must(200, "GET", "/api/alerts?state=firing&machine=pg-agent&rule="+rule.ID, nil, &list)
		if len(list) != 1 {
			return fmt.Errorf("firing on B: %+v", list)
		}
		return nil
	})
	t.Logf("rule created on A: firing on B %s later", time.Since(created).Round(time.Millisecond))

	// B writes its alerts' state to the shared database on its next flush;
	// from then on A answers for it too.
	testutil.WaitFor(t, 5*time.Second, "A sees the alert B fired", func() error {
		if code := apiA.do("GET", "/api/alerts/"+list[0].ID, nil, nil); code != 200 {
			return fmt.Errorf("GET on A: status %d", code)
		}
		return nil
	})
	// Acknowledged on A, which does not evaluate it: B adopts it.
	acked := time.Now()
	apiA.must(200, "POST", "/api/alerts/"+list[0].ID+"/ack", map[string]string{"comment": "on it"}, nil)
	testutil.WaitFor(t, 10*time.Second, "B's alert acknowledged through A", func() error {
		var al struct {
			Acknowledged bool `json:"acknowledged"`
		}
		apiB.must(200, "GET", "/api/alerts/"+list[0].ID, nil, &al)
		if !al.Acknowledged {
			return fmt.Errorf("not acknowledged on B")
		}
		return nil
	})
	t.Logf("alert acknowledged on A: acknowledged on B %s later", time.Since(acked).Round(time.Millisecond))

	// Revoked on A: B closes the stream within about a second.
	apiA.must(204, "DELETE", "/api/tokens/"+tok.ID, nil, nil)
	waitRevoked(t, agent, time.Now(), 2*time.Second, "hub A answered the DELETE (the stream is on hub B)")

	// Kill every connection to the database, the hubs' listeners included.
	tok2 := createToken(t, t.TempDir(), "--machine", "pg-agent-2")
	agent2 := startAgent(t, a, "pg-agent-2", "--token", tok2)
	waitOnline(t, a, "pg-agent-2")
	killed := terminateBackends(t, dsn)
	t.Logf("pg_terminate_backend: %d connections killed", killed)
	if killed < 2 {
		t.Fatalf("killed %d connections, want at least the two hubs' listeners", killed)
	}
	// The agent already connected keeps streaming.
	lastSeen := func() string {
		var m machine
		getJSON(t, "http://"+a.http+"/api/machines/pg-agent-2", &m)
		return m.LastSeen
	}
	before := lastSeen()
	testutil.WaitFor(t, 10*time.Second, "pg-agent-2 still streaming to A", func() error {
		if after := lastSeen(); after == before {
			return fmt.Errorf("last_seen stays %s", after)
		}
		return nil
	})
	if strings.Contains(agent2.out.String(), "token rejected") {
		t.Fatalf("the connected agent was cut by the database outage:\n%s", truncate(agent2.out.String()))
	}
	// Logins work on both; a change on B reaches A again (its listener
	// reconnected).
	testutil.WaitFor(t, 15*time.Second, "logins after the connections were killed", func() error {
		if code := loginB("alice", "alice-password-1"); code != http.StatusOK {
			return fmt.Errorf("B: %d", code)
		}
		c := &alertsClient{t: t, base: "http://" + a.http}
		if code := c.do("POST", "/api/auth/login", map[string]string{"username": "alice", "password": "alice-password-1"}, nil); code != http.StatusOK {
			return fmt.Errorf("A: %d", code)
		}
		return nil
	})
	waitLog(t, a.proc, 15*time.Second, reNotificationsRestored)
	waitLog(t, b.proc, 15*time.Second, reNotificationsRestored)
	apiB = newAlertsClient(t, b, password)
	var rule2 struct {
		ID string `json:"id"`
	}
	apiB.must(201, "POST", "/api/rules", map[string]any{
		"name": "made on B", "metric": `cpu_usage_percent{cpu="total"}`, "op": ">=", "threshold": 0,
		"machines": []string{"pg-agent-2"}, "severity": "critical",
	}, &rule2)
	apiA = newAlertsClient(t, a, password)
	testutil.WaitFor(t, 20*time.Second, "A fires the rule made on B after the outage", func() error {
		apiA.must(200, "GET", "/api/alerts?state=firing&machine=pg-agent-2&rule="+rule2.ID, nil, &list)
		if len(list) != 1 {
			return fmt.Errorf("firing on A: %+v", list)
		}
		return nil
	})
}

// usePostgres makes the hubs and commands the test starts share a fresh
// PostgreSQL database (SYSMONSTM_POSTGRES) whose first admin has password;
// it returns the database's URL.
func usePostgres(t *testing.T, password string) string {
	t.Helper()
	dsn := dbtest.NewPostgres(t)
	setEnv(t, "SYSMONSTM_POSTGRES", dsn)
	setEnv(t, "SYSMONSTM_ADMIN_PASSWORD", password)
	return dsn
}

var reNotificationsRestored = regexp.MustCompile(`PostgreSQL change notifications restored`)

// terminateBackends kills every connection to dsn's database but its own
// and returns how many.
func terminateBackends(t *testing.T, dsn string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := db.ParsePostgres(dsn)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
