package main

// No container engine or cluster runs here, so the next best thing: the five services started the
// way compose.yaml, and then the Kubernetes manifests, start them — their command and environment
// (Compose as compose-go resolves it; Kubernetes as the kubelet would: ConfigMap, Secrets,
// container env, the node name) — as plain processes against the test run's real Kafka and
// PostgreSQL, each until /health/ready answers 200, and the image's health check script run
// against each. Container paths (volumes, mounted Secrets) move to a temporary directory and
// ports to free ones; everything else is the file's.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	mrand "math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// freePort is a port free now, below the kernel's ephemeral range: the services are started one
// after the other over tens of seconds, and a port the kernel hands out (port 0) can meanwhile be
// taken as the local end of some outgoing connection (a Kafka client's), which the services,
// bound to 0.0.0.0 as in the manifests, then collide with (EADDRINUSE).
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 200; i++ {
		port := 20000 + mrand.Intn(12000) // 20000-31999; the ephemeral range starts at 32768
		l, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("no free port in 20000-31999")
	return 0
}

// backing is the test run's Kafka and a fresh database on its PostgreSQL, with topic and group
// prefixes of their own (as every other suite gets).
type backing struct {
	brokers, db, prefix, node, root string
}

func needBacking(t *testing.T) backing {
	t.Helper()
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
	prefix := fmt.Sprintf("infra_%d", time.Now().UnixNano()%1_000_000_000)
	create := exec.Command(node, "-e", `
const { Client } = require('pg');
const c = new Client({ connectionString: process.argv[1] });
c.connect().then(() => c.query('CREATE DATABASE "' + process.argv[2] + '"')).then(() => c.end(), (e) => { console.error(e.message); process.exit(1); });
`, dbURL, prefix)
	create.Dir = root
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("creating database %s: %v\n%s", prefix, err, out)
	}
	u := strings.SplitN(dbURL, "?", 2)
	db := u[0][:strings.LastIndex(u[0], "/")+1] + prefix
	if len(u) == 2 {
		db += "?" + u[1]
	}
	return backing{brokers: brokers, db: db, prefix: prefix, node: node, root: root}
}

// service is one service as a deployment file starts it.
type service struct {
	name string
	argv []string
	env  map[string]string
}

type started struct {
	name string
	port int
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed when the process has exited (and been waited for)
}

// runServices starts the services (in the given order, the first waited for before the others:
// the checker, whose public key the applier trusts), with every value equal to or under a key of
// moved rewritten to the value's directory, DSU_<NAME>_PORT set to a free port and
// portRef (e.g. "http://gateway:7400") rewritten to the gateway's; waits for /health/ready on each
// and runs infra/docker/health.js against it; stops them all at the end of the test.
func runServices(t *testing.T, b backing, svcs []service, moved map[string]string, gatewayRefs []string) {
	t.Helper()
	tmp := t.TempDir()
	ports := map[string]int{}
	for _, s := range svcs {
		ports[s.name] = freePort(t)
	}
	for _, ref := range gatewayRefs {
		moved[ref] = fmt.Sprintf("http://127.0.0.1:%d", ports["gateway"])
	}
	var froms []string
	for from, to := range moved {
		froms = append(froms, from)
		if !strings.HasPrefix(from, "http") {
			if err := os.MkdirAll(to, 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	sort.Slice(froms, func(i, j int) bool { return len(froms[i]) > len(froms[j]) }) // longest first
	var procs []*started
	t.Cleanup(func() {
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
	})
	for i, svc := range svcs {
		env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tmp}
		for k, val := range svc.env {
			for _, from := range froms {
				if val == from || strings.HasPrefix(val, from+"/") {
					val = moved[from] + strings.TrimPrefix(val, from)
					break
				}
			}
			if k == "DSU_"+strings.ToUpper(svc.name)+"_PORT" {
				val = fmt.Sprint(ports[svc.name])
			}
			env = append(env, k+"="+val)
		}
		log, err := os.Create(filepath.Join(tmp, svc.name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(svc.argv[0], svc.argv[1:]...)
		cmd.Dir = b.root
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatalf("%s: %v", svc.name, err)
		}
		s := &started{name: svc.name, port: ports[svc.name], cmd: cmd, log: log, done: make(chan struct{})}
		go func() { _ = cmd.Wait(); close(s.done) }()
		procs = append(procs, s)
		if i == 0 {
			waitReady(t, s, tmp)
		}
	}
	for _, s := range procs {
		waitReady(t, s, tmp)
		// The image's HEALTHCHECK / Compose health check, with the service's port variable.
		hc := exec.Command(b.node, filepath.Join(b.root, "infra/docker/health.js"))
		hc.Env = append(os.Environ(), fmt.Sprintf("DSU_%s_PORT=%d", strings.ToUpper(s.name), s.port))
		if out, err := hc.CombinedOutput(); err != nil {
			t.Errorf("%s: infra/docker/health.js failed: %v\n%s", s.name, err, out)
		}
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
poll:
	for ctx.Err() == nil {
		select {
		case <-s.done:
			last = "exited: " + s.cmd.ProcessState.String()
			break poll
		default:
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
	t.Fatalf("%s did not become ready on port %d (last answer: %s); its log:\n%s", s.name, s.port, last, out)
}

var startOrder = []string{"checker", "gateway", "compiler", "patcher", "applier"}

func TestComposeServicesStartAsComposeRunsThem(t *testing.T) {
	b := needBacking(t)
	p, err := LoadCompose([]string{abs(t, composeFile), abs(t, extKafka), abs(t, extPostgres)},
		map[string]string{"KAFKA_BROKERS": b.brokers, "DATABASE_URL": b.db, "KAFKA_TOPIC_PREFIX": b.prefix + ".", "DSU_GROUP_PREFIX": b.prefix}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var svcs []service
	for _, name := range startOrder {
		s := p.Services[name]
		env := map[string]string{}
		for k, v := range s.Environment {
			if v != nil {
				env[k] = *v
			} else {
				env[k] = ""
			}
		}
		svcs = append(svcs, service{name: name, argv: s.Command, env: env})
	}
	tmp := t.TempDir()
	runServices(t, b, svcs, map[string]string{
		"/var/lib/dsu":         filepath.Join(tmp, "home"),
		"/var/lib/dsu-keys":    filepath.Join(tmp, "keys"),
		"/var/lib/dsu-applier": filepath.Join(tmp, "applier-home"),
		"/run/dsu":             filepath.Join(tmp, "run"),
		"/etc/dsu/trusted":     filepath.Join(tmp, "keys"), // the checker-keys volume, read-only there
	}, []string{"http://gateway:7400"})

	// And the health check script fails when nothing answers.
	hc := exec.Command(b.node, filepath.Join(b.root, "infra/docker/health.js"), fmt.Sprint(freePort(t)))
	if err := hc.Run(); err == nil {
		t.Error("infra/docker/health.js exited 0 with nothing listening on its port")
	}
}

func TestKubernetesServicesStartAsTheManifestsRunThem(t *testing.T) {
	b := needBacking(t)
	objs, err := RenderKustomize(k8sBase)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	// The Secrets the operator creates: the database, a token, the checker's key pair as files.
	secrets := map[string]string{"DATABASE_URL": b.db, "DSU_ARTIFACTS_TOKEN": "dsu_unused_until_a_rollout"}
	keyDir := filepath.Join(tmp, "checker-key")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	privDER, _ := x509.MarshalPKCS8PrivateKey(priv)
	pubDER, _ := x509.MarshalPKIXPublicKey(pub)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	write(t, filepath.Join(keyDir, "checker-ed25519.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})))
	write(t, filepath.Join(keyDir, "checker-ed25519.pub.pem"), string(pubPEM))

	var config map[string]string
	pods := map[string]corev1.PodSpec{}
	for _, o := range objs {
		switch w := o.Obj.(type) {
		case *corev1.ConfigMap:
			config = w.Data
		case *appsv1.Deployment:
			pods[w.Name] = w.Spec.Template.Spec
		case *appsv1.DaemonSet:
			pods[w.Name] = w.Spec.Template.Spec
		}
	}
	var svcs []service
	for _, name := range startOrder {
		c := pods[name].Containers[0]
		env := map[string]string{}
		// As the kubelet does it: envFrom first, then env entries override.
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil {
				for k, v := range config {
					env[k] = v
				}
			}
		}
		for _, e := range c.Env {
			switch {
			case e.ValueFrom == nil:
				env[e.Name] = e.Value
			case e.ValueFrom.SecretKeyRef != nil:
				if v, ok := secrets[e.ValueFrom.SecretKeyRef.Key]; ok {
					env[e.Name] = v
				} else if e.ValueFrom.SecretKeyRef.Optional == nil || !*e.ValueFrom.SecretKeyRef.Optional {
					t.Fatalf("%s: env %s needs key %s of Secret %s, which the docs do not tell the operator to create", name, e.Name, e.ValueFrom.SecretKeyRef.Key, e.ValueFrom.SecretKeyRef.Name)
				}
			case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
				env[e.Name] = "node-1"
			default:
				t.Fatalf("%s: env %s comes from something this test does not provide", name, e.Name)
			}
		}
		env["KAFKA_BROKERS"] = b.brokers // the ConfigMap's placeholder -> the test run's broker
		env["KAFKA_TOPIC_PREFIX"] = b.prefix + "."
		env["DSU_GROUP_PREFIX"] = b.prefix
		svcs = append(svcs, service{name: name, argv: c.Args, env: env})
	}
	runServices(t, b, svcs, map[string]string{
		"/var/lib/dsu":         filepath.Join(tmp, "home"),
		"/var/lib/dsu-applier": filepath.Join(tmp, "applier-home"),
		"/run/dsu":             filepath.Join(tmp, "run"),
		"/etc/dsu/checker-key": keyDir,
		"/etc/dsu/trusted":     keyDir, // only the .pub.pem item is mounted there
	}, []string{"http://gateway.dsu.svc.cluster.local:7400"})
	// The checker loads its key on its first approval, not at start: load it now exactly as it
	// does (key paths from its environment), and the applier's trusted key as the applier does.
	// Both must be the Secret's pair, and the public key taken as it is: the checker rewrites it
	// when it differs from the one it derives, which a read-only Secret volume would refuse.
	keys := exec.Command(b.node, "-e", `
const pf = require('@dsu/patch-format');
const k = pf.keyPathsFromEnv(process.env);
const signing = pf.loadOrCreateSigningKey(k.signingKey, k.signingPublicKey);
const trusted = pf.loadTrustedKey(process.env.DSU_TRUSTED_KEY);
if (signing.keyId !== trusted.keyId) { console.error('signing key ' + signing.keyId + ' is not the trusted ' + trusted.keyId); process.exit(1); }
`)
	keys.Dir = b.root
	keys.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"DSU_HOME=" + filepath.Join(tmp, "home"),
		"DSU_SIGNING_KEY=" + strings.Replace(svcs[0].env["DSU_SIGNING_KEY"], "/etc/dsu/checker-key", keyDir, 1),
		"DSU_TRUSTED_KEY=" + strings.Replace(svcs[len(svcs)-1].env["DSU_TRUSTED_KEY"], "/etc/dsu/trusted", keyDir, 1),
	}
	if out, err := keys.CombinedOutput(); err != nil {
		t.Fatalf("the checker's key from the Secret, as the checker and the applier load it: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(keyDir, "checker-ed25519.pub.pem")); string(got) != string(pubPEM) {
		t.Fatalf("the checker rewrote checker-ed25519.pub.pem (a Secret volume is read-only):\n%s\nwas\n%s", got, pubPEM)
	}
}
