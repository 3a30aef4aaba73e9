// Package deploy_test checks the packaging under deploy/ with the real tools
// this machine has: compose-go (Docker Compose's own loader), nats-server,
// haproxy, systemd-analyze, and the sysmonstm binary's own flag parser
// (hub --check-config), so a renamed flag or a broken config fails here.
// Docker itself is not run (no daemon here): `docker compose config` and
// image builds are checked by the lead on a machine with Docker.
package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"github.com/sysmonstm/sysmonstm/internal/testutil"
)

var binary string

func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithBinary(m, "../cmd/sysmonstm", &binary))
}

// deployCopy copies deploy/ (without secrets/) to a temporary folder and
// runs its gen-secrets.sh there, as an operator does before the first
// start. It returns the folder.
func deployCopy(t *testing.T) string {
	t.Helper()
	testutil.NeedBinary(t, "openssl", "apt-get install openssl")
	dst := t.TempDir()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == "secrets" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, path), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, path), data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(dst, "gen-secrets.sh"), "monitor.example.net", "10.1.2.3").CombinedOutput()
	if err != nil {
		t.Fatalf("gen-secrets.sh: %v\n%s", err, out)
	}
	if out, err := exec.Command(filepath.Join(dst, "gen-secrets.sh")).CombinedOutput(); err == nil {
		t.Fatalf("gen-secrets.sh overwrote existing secrets:\n%s", out)
	}
	return dst
}

// loadCompose loads dir's docker-compose.yml with compose-go, as
// `docker compose` does (interpolation, env_file, anchors, validation).
func loadCompose(t *testing.T, dir string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.yml")},
		cli.WithWorkingDirectory(dir), cli.WithEnv([]string{}), cli.WithInterpolation(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go: %v", err)
	}
	return p
}

// flagValues returns every value of --name in args (--name=v or --name v).
func flagValues(args []string, name string) []string {
	var vs []string
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			vs = append(vs, v)
		} else if a == "--"+name && i+1 < len(args) {
			vs = append(vs, args[i+1])
		}
	}
	return vs
}

// checkConfig runs `sysmonstm ARGS --check-config` with only env as its
// environment and fails unless the binary's flag parser and validation
// accept them.
func checkConfig(t *testing.T, what string, args []string, env []string) {
	t.Helper()
	cmd := exec.Command(binary, append(slices.Clone(args), "--check-config")...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "settings valid") {
		// On an unknown flag the parser prints every flag: keep the error.
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Errorf("%s: sysmonstm %s --check-config: %v\n%s", what, strings.Join(args, " "), err, lines[len(lines)-1])
	}
}

var natsServices = []string{"nats-1", "nats-2", "nats-3"}

// TestCompose: deploy/docker-compose.yml loads with Docker Compose's loader
// and describes the documented cluster: three hubs whose flags name every
// NATS node, PostgreSQL and VictoriaMetrics, health-checked on /ready; a
// 3-node NATS cluster whose configs route to each other; every hub command
// line passes the hub's own flag parser and validation; no secret in the file.
func TestCompose(t *testing.T) {
	dir := deployCopy(t)
	p := loadCompose(t, dir)
	svc := func(name string) types.ServiceConfig {
		t.Helper()
		s, ok := p.Services[name]
		if !ok {
			t.Fatalf("service %s missing; have %v", name, p.ServiceNames())
		}
		return s
	}
	for _, name := range []string{"postgres", "vm", "lb"} {
		svc(name)
	}
	if vm := svc("vm"); !slices.ContainsFunc(vm.Command, func(a string) bool { return strings.HasPrefix(a, "-dedup.minScrapeInterval=") }) {
		t.Errorf("vm: no -dedup.minScrapeInterval in %q: a batch delivered twice would be stored twice", vm.Command)
	}
	if vm := svc("vm"); !slices.Contains(vm.Command, "-search.latencyOffset=0s") {
		t.Errorf("vm: no -search.latencyOffset=0s in %q: the hubs' charts (--history-url) would miss the newest 30 s", vm.Command)
	}
	lbConf, err := os.ReadFile(filepath.Join(dir, "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}

	hubs := 0
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		if len(s.Command) == 0 || s.Command[0] != "hub" {
			continue
		}
		hubs++
		t.Run(name, func(t *testing.T) {
			if s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" {
				t.Errorf("build: %+v, want deploy/Dockerfile", s.Build)
			}
			if hc := s.HealthCheck; hc == nil || !slices.ContainsFunc(hc.Test, func(a string) bool { return strings.HasSuffix(a, ":8000/ready") }) {
				t.Errorf("health check %+v does not ask /ready", hc)
			}
			for _, dep := range append([]string{"postgres", "vm"}, natsServices...) {
				if _, ok := s.DependsOn[dep]; !ok {
					t.Errorf("does not depend on %s", dep)
				}
			}
			if !regexp.MustCompile(`(?m)^\s*server\s+` + name + `\s+` + name + `:8000\b`).Match(lbConf) {
				t.Errorf("haproxy.cfg has no server %s %s:8000", name, name)
			}
			// Every NATS node, by its service name and the client port its config listens on.
			nats := flagValues(s.Command, "nats")
			if len(nats) != 1 {
				t.Fatalf("--nats given %d times: %q", len(nats), s.Command)
			}
			var hosts []string
			for _, u := range strings.Split(nats[0], ",") {
				pu, err := url.Parse(u)
				if err != nil || pu.Scheme != "nats" || pu.Port() != "4222" {
					t.Errorf("--nats %q: want nats://HOST:4222", u)
					continue
				}
				hosts = append(hosts, pu.Hostname())
			}
			slices.Sort(hosts)
			if !slices.Equal(hosts, natsServices) {
				t.Errorf("--nats names %v, want every node %v", hosts, natsServices)
			}
			urlHost := func(flag, wantHost string) *url.URL {
				t.Helper()
				vs := flagValues(s.Command, flag)
				if len(vs) != 1 {
					t.Errorf("--%s given %d times", flag, len(vs))
					return &url.URL{}
				}
				u, err := url.Parse(vs[0])
				if err != nil || u.Hostname() != wantHost {
					t.Errorf("--%s %q: want a URL on %s", flag, vs[0], wantHost)
					return &url.URL{}
				}
				return u
			}
			// --postgres comes from the environment, so admin commands run
			// in the container (token, user) reach the same database.
			if v := s.Environment["SYSMONSTM_POSTGRES"]; v == nil || len(flagValues(s.Command, "postgres")) > 0 {
				t.Errorf("SYSMONSTM_POSTGRES %v, --postgres %q: want the variable only", v, flagValues(s.Command, "postgres"))
			} else if u, err := url.Parse(*v); err != nil || u.Hostname() != "postgres" {
				t.Errorf("SYSMONSTM_POSTGRES %q: want a URL on postgres", *v)
			} else if _, ok := u.User.Password(); ok {
				t.Errorf("SYSMONSTM_POSTGRES carries a password")
			}
			urlHost("remote-write", "vm")
			urlHost("history-url", "vm")
			if !slices.Contains(s.Command, "--alerts-leader-election") {
				t.Error("no --alerts-leader-election: every hub sees every machine, so each would notify")
			}
			if s.Environment["PGPASSFILE"] == nil || !slices.ContainsFunc(s.Secrets, func(sc types.ServiceSecretConfig) bool {
				return "/run/secrets/"+sc.Source == *s.Environment["PGPASSFILE"]
			}) {
				t.Errorf("PGPASSFILE %v is not one of the service's secrets %+v", s.Environment["PGPASSFILE"], s.Secrets)
			}
			if v := s.Environment["SYSMONSTM_ADMIN_PASSWORD"]; v == nil || len(*v) < 32 {
				t.Errorf("SYSMONSTM_ADMIN_PASSWORD does not come from the generated env file: %v", v)
			}
			// The hub's own parser and validation, with the container's
			// environment; secrets are where gen-secrets.sh put them.
			var args []string
			for _, a := range s.Command {
				args = append(args, strings.ReplaceAll(a, "/run/secrets/", filepath.Join(dir, "secrets")+"/"))
			}
			var env []string
			for k, v := range s.Environment {
				if v != nil {
					env = append(env, k+"="+strings.ReplaceAll(*v, "/run/secrets/", filepath.Join(dir, "secrets")+"/"))
				}
			}
			checkConfig(t, name, args, env)
		})
	}
	if hubs != 3 {
		t.Errorf("%d hub services, want 3", hubs)
	}

	// NATS: three nodes, each on its own config, clustered with the others.
	names := map[string]bool{}
	for _, name := range natsServices {
		s := svc(name)
		conf := ""
		for _, v := range s.Volumes {
			if v.Target == "/etc/nats/nats.conf" {
				conf = v.Source
			}
		}
		if conf == "" || !slices.Contains(s.Command, "/etc/nats/nats.conf") {
			t.Errorf("%s: no config mounted at /etc/nats/nats.conf and given: %+v %q", name, s.Volumes, s.Command)
			continue
		}
		c := readNATSConf(t, conf)
		names[c.serverName] = true
		if !c.jetstream || c.clusterName == "" || c.clusterPort != "6222" || c.clientPort != "4222" || c.maxPayload != "8MB" {
			t.Errorf("%s (%s): %+v: want JetStream, a named cluster on 6222, clients on 4222, max_payload 8MB (a batch is one message)", name, conf, c)
		}
		var routed []string
		for _, r := range c.routes {
			u, err := url.Parse(r)
			if err != nil || u.Port() != "6222" {
				t.Errorf("%s: route %q: want nats-route://HOST:6222", name, r)
				continue
			}
			routed = append(routed, u.Hostname())
		}
		slices.Sort(routed)
		if !slices.Equal(routed, natsServices) {
			t.Errorf("%s: routes to %v, want every node %v", name, routed, natsServices)
		}
	}
	if len(names) != 3 {
		t.Errorf("server names %v: want 3 distinct", names)
	}

	checkNoSecrets(t, filepath.Join(dir, "docker-compose.yml"))
}

// secretName matches environment variables that hold a secret.
var secretName = regexp.MustCompile(`(?i)(pass|secret|token|key|credential)`)

// checkNoSecrets fails if the compose file itself holds a secret: an
// environment variable named like a secret with a literal value (a path
// under /run/secrets is fine), or a URL with a password.
func checkNoSecrets(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for name, s := range doc.Services {
		for k, v := range s.Environment {
			if secretName.MatchString(k) && !strings.HasPrefix(v, "/run/secrets/") {
				t.Errorf("%s: environment %s has a literal value %q; use a secret file", name, k, v)
			}
		}
	}
	for _, m := range regexp.MustCompile(`[a-z+]+://[^\s"',\]]+`).FindAllString(string(data), -1) {
		if u, err := url.Parse(m); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				t.Errorf("URL with a password in the compose file: %s", m)
			}
		}
	}
}

// natsConf is what the tests read from a NATS config.
type natsConf struct {
	serverName, clientPort, clusterName, clusterPort, maxPayload string
	jetstream                                                    bool
	routes                                                       []string
}

// readNATSConf reads the few settings the deployment relies on from a
// NATS config file in the layout deploy/nats/ uses (one setting a line);
// nats-server itself checks the whole file in TestNATSCluster.
func readNATSConf(t *testing.T, path string) natsConf {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var c natsConf
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasSuffix(line, "{"):
			section = strings.TrimSpace(strings.TrimSuffix(line, "{"))
			if section == "jetstream" {
				c.jetstream = true
			}
		case line == "}":
			section = ""
		case strings.HasPrefix(line, "nats-route://"):
			c.routes = append(c.routes, line)
		default:
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimSpace(v)
			switch section + "." + strings.TrimSpace(k) {
			case ".server_name":
				c.serverName = v
			case ".max_payload":
				c.maxPayload = v
			case ".listen":
				_, c.clientPort, _ = net.SplitHostPort(v)
			case "cluster.name":
				c.clusterName = v
			case "cluster.listen":
				_, c.clusterPort, _ = net.SplitHostPort(v)
			}
		}
	}
	return c
}

// freePort returns a loopback port free right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestNATSCluster: each deploy/nats config passes `nats-server -t`; started
// together (only addresses and the store folder rewritten to loopback
// ports and a temporary folder) the three form one cluster with a
// JetStream meta leader.
func TestNATSCluster(t *testing.T) {
	bin := testutil.NeedBinary(t, "nats-server", "apt-get install nats-server")
	confs, err := filepath.Glob("nats/*.conf")
	if err != nil || len(confs) != 3 {
		t.Fatalf("deploy/nats: %v %v, want 3 configs", confs, err)
	}
	for _, c := range confs {
		if out, err := exec.Command(bin, "-t", "-c", c).CombinedOutput(); err != nil {
			t.Errorf("nats-server -t -c %s: %v\n%s", c, err, out)
		}
	}
	type node struct{ client, cluster, http int }
	nodes := map[string]node{}
	for _, name := range natsServices {
		nodes[name] = node{freePort(t), freePort(t), freePort(t)}
	}
	dir := t.TempDir()
	for _, c := range confs {
		data, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(c), ".conf")
		n := nodes[name]
		s := string(data)
		s = strings.Replace(s, "listen: 0.0.0.0:4222", fmt.Sprintf("listen: 127.0.0.1:%d", n.client), 1)
		s = strings.Replace(s, "http: 0.0.0.0:8222", fmt.Sprintf("http: 127.0.0.1:%d", n.http), 1)
		s = strings.Replace(s, "listen: 0.0.0.0:6222", fmt.Sprintf("listen: 127.0.0.1:%d", n.cluster), 1)
		s = strings.Replace(s, "store_dir: /data", "store_dir: "+filepath.Join(dir, name), 1)
		for other, on := range nodes {
			s = strings.Replace(s, "nats-route://"+other+":6222", fmt.Sprintf("nats-route://127.0.0.1:%d", on.cluster), 1)
		}
		if strings.Contains(s, "0.0.0.0") || strings.Contains(s, "/data") {
			t.Fatalf("%s: an address or folder was not rewritten (has the layout changed?):\n%s", c, s)
		}
		conf := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(conf, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-c", conf)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("--- %s ---\n%s", name, out.String())
			}
		})
	}
	for name, n := range nodes {
		testutil.WaitFor(t, 30*time.Second, name+" clustered with a JetStream leader", func() error {
			var routez struct {
				NumRoutes int `json:"num_routes"`
			}
			if err := getJSON(fmt.Sprintf("http://127.0.0.1:%d/routez", n.http), &routez); err != nil {
				return err
			}
			// 2.9 opens one route per peer (later versions may pool more).
			if routez.NumRoutes < 2 {
				return fmt.Errorf("%d routes", routez.NumRoutes)
			}
			var jsz struct {
				Meta *struct {
					Name        string `json:"name"`
					Leader      string `json:"leader"`
					ClusterSize int    `json:"cluster_size"`
				} `json:"meta_cluster"`
			}
			if err := getJSON(fmt.Sprintf("http://127.0.0.1:%d/jsz", n.http), &jsz); err != nil {
				return err
			}
			if jsz.Meta == nil || jsz.Meta.Leader == "" || jsz.Meta.Name != "sysmonstm" || jsz.Meta.ClusterSize != 3 {
				return fmt.Errorf("meta cluster %+v", jsz.Meta)
			}
			return nil
		})
	}
}

func getJSON(u string, v any) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// TestHAProxyConfig: deploy/haproxy.cfg passes `haproxy -c` with the
// certificate files gen-secrets.sh made.
func TestHAProxyConfig(t *testing.T) {
	bin := testutil.NeedBinary(t, "haproxy", "apt-get install haproxy")
	dir := deployCopy(t)
	data, err := os.ReadFile(filepath.Join(dir, "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "haproxy-check.cfg")
	s := strings.ReplaceAll(string(data), "/run/secrets/", filepath.Join(dir, "secrets")+"/")
	if err := os.WriteFile(conf, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", conf).CombinedOutput(); err != nil {
		t.Errorf("haproxy -c: %v\n%s", err, out)
	}
}

// TestSystemdUnits: the units in deploy/systemd pass `systemd-analyze
// verify` without a warning (with ExecStart pointed at a built binary),
// and the hub unit's command line, with its example environment file,
// passes the hub's flag parser and validation.
func TestSystemdUnits(t *testing.T) {
	bin := testutil.NeedBinary(t, "systemd-analyze", "apt-get install systemd")
	units, err := filepath.Glob("systemd/*.service")
	if err != nil || len(units) < 2 {
		t.Fatalf("deploy/systemd: %v %v", units, err)
	}
	dir := t.TempDir()
	for _, u := range units {
		data, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "ExecStart=/usr/local/bin/sysmonstm ") {
			t.Fatalf("%s: ExecStart is not /usr/local/bin/sysmonstm", u)
		}
		s := strings.ReplaceAll(string(data), "/usr/local/bin/sysmonstm ", binary+" ")
		tmp := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "verify", tmp).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u, err, out)
		}
		for _, key := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "EnvironmentFile=/etc/sysmonstm/"} {
			if !strings.Contains(s, "\n"+key) {
				t.Errorf("%s: no %s", u, key)
			}
		}
		args := execStart(t, s)
		if args[0] != binary {
			t.Fatalf("%s: ExecStart %q", u, args)
		}
		if args[1] != "hub" {
			continue
		}
		if !strings.Contains(s, "\nUser=sysmonstm") {
			t.Errorf("%s: the hub runs as root", u)
		}
		env := readEnvFile(t, "systemd/hub.env.example")
		checkConfig(t, u, args[1:], env)
		if nats := flagValues(args, "nats"); len(nats) != 1 || strings.Count(nats[0], "nats://") != 3 {
			t.Errorf("%s: --nats %q does not name three nodes", u, nats)
		}
		if !slices.Contains(args, "--alerts-leader-election") {
			t.Errorf("%s: no --alerts-leader-election", u)
		}
	}
}

// execStart returns the ExecStart= command line of a unit, its
// continuation lines joined, split into words (the units quote nothing).
func execStart(t *testing.T, unit string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(unit, "\nExecStart=")
	if !ok {
		t.Fatal("no ExecStart=")
	}
	var line strings.Builder
	for _, l := range strings.Split(rest, "\n") {
		cont := strings.HasSuffix(l, "\\")
		line.WriteString(strings.TrimSuffix(l, "\\") + " ")
		if !cont {
			break
		}
	}
	if strings.ContainsAny(line.String(), `"'$%`) {
		t.Fatalf("ExecStart %q: quoting or specifiers; this test splits on spaces only", line.String())
	}
	return strings.Fields(line.String())
}

// readEnvFile reads KEY=value lines (systemd EnvironmentFile, no quoting).
func readEnvFile(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			env = append(env, l)
		}
	}
	return env
}

// TestDockerfile: the image runs as a non-root user, builds a static
// binary, and its default command passes the hub's flag parser.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if !strings.Contains(s, "CGO_ENABLED=0") {
		t.Error("Dockerfile: the binary is not built static (CGO_ENABLED=0)")
	}
	users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(s, -1)
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1][1], "0") || strings.HasPrefix(users[len(users)-1][1], "root") {
		t.Errorf("Dockerfile: final USER %v is root", users)
	}
	m := regexp.MustCompile(`(?m)^CMD\s+(\[.*\])$`).FindStringSubmatch(s)
	if m == nil {
		t.Fatal("Dockerfile: no CMD [...]")
	}
	var cmd []string
	if err := json.Unmarshal([]byte(m[1]), &cmd); err != nil || len(cmd) == 0 || cmd[0] != "hub" {
		t.Fatalf("Dockerfile CMD %s: %v", m[1], err)
	}
	checkConfig(t, "Dockerfile CMD", cmd, nil)
}
