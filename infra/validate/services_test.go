package main

// No container engine runs here, so the next best thing: the five services started the way
// compose.yaml starts them — its command and its environment, as compose-go resolves them — as
// plain processes against the test run's real Kafka and PostgreSQL, each until /health/ready
// answers 200, and the image's health check script run against each. Paths that are container
// volumes (DSU_HOME, the run directory, the key directory) move to a temporary directory and
// ports to free ones; everything else is the Compose file's.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type started struct {
	name string
	port int
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed when the process has exited (and been waited for)
}

func TestComposeServicesStartAsComposeRunsThem(t *testing.T) {
	brokers, dbURL := os.Getenv("KAFKA_BROKERS"), os.Getenv("DATABASE_URL")
	if brokers == "" || dbURL == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("KAFKA_BROKERS and DATABASE_URL are unset under CI=true: tools/test-all sets them (tools/kafka, tools/postgres)")
		}
		t.Skip("KAFKA_BROKERS / DATABASE_URL unset: start tools/kafka and tools/postgres (or run tools/test-all) to run the services")
	}
	root := abs(t, "../..")
	for _, s := range PipelineServices {
		if _, err := os.Stat(filepath.Join(root, "apps", s, "dist", "main.js")); err != nil {
			t.Fatalf("apps/%s is not built (%v): npx nx run-many -t build", s, err)
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not on PATH")
	}

	// A database and topic / group prefixes of our own, as every other suite gets.
	suffix := fmt.Sprintf("infra_%d", time.Now().UnixNano()%1_000_000_000)
	create := exec.Command(node, "-e", `
const { Client } = require('pg');
const c = new Client({ connectionString: process.argv[1] });
c.connect().then(() => c.query('CREATE DATABASE "' + process.argv[2] + '"')).then(() => c.end(), (e) => { console.error(e.message); process.exit(1); });
`, dbURL, suffix)
	create.Dir = root
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("creating database %s: %v\n%s", suffix, err, out)
	}
	u := strings.SplitN(dbURL, "?", 2)
	db := u[0][:strings.LastIndex(u[0], "/")+1] + suffix
	if len(u) == 2 {
		db += "?" + u[1]
	}

	p, err := LoadCompose([]string{abs(t, composeFile), abs(t, extKafka), abs(t, extPostgres)},
		map[string]string{"KAFKA_BROKERS": brokers, "DATABASE_URL": db, "KAFKA_TOPIC_PREFIX": suffix + ".", "DSU_GROUP_PREFIX": suffix}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	ports := map[string]int{}
	for _, s := range PipelineServices {
		ports[s] = freePort(t)
	}
	// Container paths -> directories of this test.
	moved := map[string]string{
		"/var/lib/dsu":         filepath.Join(tmp, "home"),
		"/var/lib/dsu-keys":    filepath.Join(tmp, "keys"),
		"/var/lib/dsu-applier": filepath.Join(tmp, "applier-home"),
		"/run/dsu":             filepath.Join(tmp, "run"),
		"/etc/dsu/trusted":     filepath.Join(tmp, "keys"),
		"http://gateway:7400":  fmt.Sprintf("http://127.0.0.1:%d", ports["gateway"]),
	}
	for _, d := range []string{"home", "keys", "applier-home", "run"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var procs []*started
	defer func() {
		for _, s := range procs {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, s := range procs {
			select {
			case <-s.done:
			case <-time.After(20 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.done
			}
			s.log.Close()
		}
	}()
	// The checker first: the applier trusts the public key it writes on start.
	order := []string{"checker", "gateway", "compiler", "patcher", "applier"}
	for _, name := range order {
		svc := p.Services[name]
		env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tmp}
		for k, v := range svc.Environment {
			val := ""
			if v != nil {
				val = *v
			}
			for from, to := range moved {
				if val == from || strings.HasPrefix(val, from+"/") {
					val = to + strings.TrimPrefix(val, from)
				}
			}
			if k == "DSU_"+strings.ToUpper(name)+"_PORT" {
				val = fmt.Sprint(ports[name])
			}
			env = append(env, k+"="+val)
		}
		log, err := os.Create(filepath.Join(tmp, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(svc.Command[0], svc.Command[1:]...)
		cmd.Dir = root
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s := &started{name: name, port: ports[name], cmd: cmd, log: log, done: make(chan struct{})}
		go func() { _ = cmd.Wait(); close(s.done) }()
		procs = append(procs, s)
		if name == "checker" {
			waitReady(t, s, tmp)
		}
	}
	for _, s := range procs {
		waitReady(t, s, tmp)
		// The image's HEALTHCHECK / Compose health check, with the service's own environment.
		hc := exec.Command(node, filepath.Join(root, "infra/docker/health.js"))
		hc.Env = append(os.Environ(), fmt.Sprintf("DSU_%s_PORT=%d", strings.ToUpper(s.name), s.port))
		if out, err := hc.CombinedOutput(); err != nil {
			t.Errorf("%s: infra/docker/health.js failed: %v\n%s", s.name, err, out)
		}
	}
	// And the script fails when nothing answers.
	hc := exec.Command(node, filepath.Join(root, "infra/docker/health.js"), fmt.Sprint(freePort(t)))
	if err := hc.Run(); err == nil {
		t.Error("infra/docker/health.js exited 0 with nothing listening on its port")
	}
}

// waitReady polls /health/ready until 200, failing with the service's log when it exits or
// takes longer than two minutes (a loaded 2-core machine starts five Nest apps in ~30 s).
func waitReady(t *testing.T, s *started, tmp string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://127.0.0.1:%d/health/ready", s.port)
	last := ""
	for ctx.Err() == nil {
		select {
		case <-s.done:
			last = "exited: " + s.cmd.ProcessState.String()
			ctx = context.Background() // leave the loop below with the log
		default:
		}
		if last != "" && strings.HasPrefix(last, "exited") {
			break
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
			last = fmt.Sprintf("%d %s", res.StatusCode, body)
		} else {
			last = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	out, _ := os.ReadFile(filepath.Join(tmp, s.name+".log"))
	if len(out) > 4000 {
		out = out[len(out)-4000:]
	}
	t.Fatalf("%s (as compose.yaml runs it) did not become ready on port %d (last answer: %s); its log:\n%s", s.name, s.port, last, out)
}
