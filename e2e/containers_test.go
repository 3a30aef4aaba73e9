package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

// TestContainerRestartingDefaultRule: a real agent reads a container's
// cgroup from a fixture tree (--sys-path), the container restarts three
// times (its cgroup's usage_usec starts again near 0 each time), and the
// hub's default rule "Container restarting" fires on
// container_restarts_total, with the container named in its description.
func TestContainerRestartingDefaultRule(t *testing.T) {
	t.Parallel()
	const password = "e2e-containers-admin-pw"
	setEnv(t, "SYSMONSTM_ADMIN_PASSWORD", password)
	const id = "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc"
	root := t.TempDir()
	cgroup := filepath.Join(root, "sys", "fs", "cgroup")
	scope := filepath.Join(cgroup, "system.slice", "docker-"+id+".scope")
	if err := os.MkdirAll(scope, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(dir, name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(cgroup, "cgroup.controllers", "cpu io memory pids\n")
	for name, data := range map[string]string{
		"cpu.stat": "usage_usec 5000000\n", "memory.current": "104857600\n", "memory.stat": "inactive_file 0\n",
		"io.stat": "", "cgroup.procs": "",
	} {
		write(scope, name, data)
	}

	hub := startHub(t, t.TempDir(), "", "")
	api := newAlertsClient(t, hub, password)
	// The rootfs holds no runtime socket: the container goes by its short id.
	startAgent(t, hub, "ctr-host", "--sys-path", filepath.Join(root, "sys"), "--rootfs", root)

	restarts := func() (float64, error) {
		var m machine
		if code := getJSON(t, "http://"+hub.http+"/api/machines/ctr-host", &m); code != 200 {
			return 0, fmt.Errorf("machine: HTTP %d", code)
		}
		v, ok := m.value("container_restarts_total", "container", id[:12])
		if !ok {
			return 0, fmt.Errorf("no container_restarts_total yet")
		}
		return v, nil
	}
	testutil.WaitFor(t, 20*time.Second, "the container's series", func() error { _, err := restarts(); return err })

	// Three restarts: up (usage grows), then a new cgroup (usage near 0).
	usage := 5_000_000
	for i := 1; i <= 3; i++ {
		usage += 1_000_000
		write(scope, "cpu.stat", fmt.Sprintf("usage_usec %d\n", usage))
		testutil.WaitFor(t, 10*time.Second, "the agent reading the grown usage", func() error {
			v, err := restarts()
			if err == nil && v != float64(i-1) {
				err = fmt.Errorf("restarts %v, want %d", v, i-1)
			}
			return err
		})
		time.Sleep(1500 * time.Millisecond) // at least one tick on the grown value
		usage = 1000 * i
		write(scope, "cpu.stat", fmt.Sprintf("usage_usec %d\n", usage))
		testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("restart %d counted", i), func() error {
			v, err := restarts()
			if err == nil && v != float64(i) {
				err = fmt.Errorf("restarts %v, want %d", v, i)
			}
			return err
		})
	}

	var fired []struct {
		RuleID      string  `json:"rule_id"`
		Machine     string  `json:"machine"`
		Value       float64 `json:"value"`
		Description string  `json:"description"`
	}
	testutil.WaitFor(t, 15*time.Second, "the default rule firing", func() error {
		api.must(200, "GET", "/api/alerts?state=firing&machine=ctr-host&rule=builtin-container-restarting", nil, &fired)
		if len(fired) != 1 {
			return fmt.Errorf("firing: %+v", fired)
		}
		return nil
	})
	a := fired[0]
	if a.Value < 3 || !strings.Contains(a.Description, id[:12]) || !strings.Contains(a.Description, "ctr-host") {
		t.Fatalf("alert %+v", a)
	}
}
