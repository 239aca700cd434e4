package main

// The deployment files under infra/ checked with the ecosystem's own parsers: BuildKit's Dockerfile
// parser and linter, compose-go (the Compose specification's loader and JSON schema), kustomize's
// krusty (what `kubectl apply -k` runs) and the Kubernetes API types decoded strictly. Every
// validator is also shown to reject a broken file, so a validator that accepted anything would
// fail here.

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	infraDir      = ".."
	dockerfile    = "../docker/Dockerfile"
	composeFile   = "../compose/compose.yaml"
	extKafka      = "../compose/external-kafka.yaml"
	extPostgres   = "../compose/external-postgres.yaml"
	k8sBase       = "../k8s/base"
	k8sExample    = "../k8s/overlays/example"
	defaultKafka  = "kafka:9092"
	defaultDBURL  = "postgres://dsu:dsu@postgres:5432/dsu"
	existingKafka = "kafka-1.corp:9092,kafka-2.corp:9092"
	existingDBURL = "postgres://dsu:secret@db.corp:5432/dsu"
)

// The Secrets the base leaves to the operator (the example overlay generates them).
var baseSecrets = K8sExpect{ExternalSecrets: []string{"dsu-secrets", "dsu-checker-key"}}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func write(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustParseDockerfile(t *testing.T) *Dockerfile {
	t.Helper()
	d, err := ParseDockerfile(dockerfile)
	if err != nil {
		t.Fatalf("the infra Dockerfile does not parse: %v", err)
	}
	return d
}

// wantError fails unless err is non-nil and mentions every fragment.
func wantError(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; expected an error mentioning %q", fragments)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error does not mention %q:\n%v", f, err)
		}
	}
}

// wantProblem fails unless one of problems mentions every fragment.
func wantProblem(t *testing.T, problems []string, fragments ...string) {
	t.Helper()
	for _, p := range problems {
		all := true
		for _, f := range fragments {
			all = all && strings.Contains(p, f)
		}
		if all {
			return
		}
	}
	t.Fatalf("no problem mentions %q; got:\n  %s", fragments, strings.Join(problems, "\n  "))
}

func noProblems(t *testing.T, what string, problems []string) {
	t.Helper()
	if len(problems) > 0 {
		t.Fatalf("%s: %d problem(s):\n  %s", what, len(problems), strings.Join(problems, "\n  "))
	}
}

// --- Dockerfile -----------------------------------------------------------------------------

func TestDockerfileParsesLintsAndHasTheRequiredStages(t *testing.T) {
	d := mustParseDockerfile(t)
	noProblems(t, dockerfile, d.Check(ProjectDockerfile))
	if got := d.EffectiveUser(d.Stage("compiler")); got != "10001:10001" {
		t.Fatalf("compiler stage user %q", got)
	}
}

func TestDockerfileRejectsBrokenSyntax(t *testing.T) {
	dir := t.TempDir()
	_, err := ParseDockerfile(write(t, dir+"/Dockerfile", "FROM node:20 AS build\nRUNN npm ci\n"))
	wantError(t, err, "unknown instruction")
	// BuildKit's linter runs: FROM ... as (lower case) under an upper-case FROM.
	_, err = ParseDockerfile(write(t, dir+"/Dockerfile", "FROM node:20 as build\nRUN npm ci\n"))
	wantError(t, err, "FromAsCasing")
}

func TestDockerfileCheckRejectsSingleStageRootImage(t *testing.T) {
	dir := t.TempDir()
	d, err := ParseDockerfile(write(t, dir+"/Dockerfile", "FROM node:20\nCOPY . .\nRUN npm ci\nCMD node apps/gateway/dist/main.js\n"))
	if err != nil {
		t.Fatal(err)
	}
	problems := d.Check(ProjectDockerfile)
	wantProblem(t, problems, "multi-stage")
	wantProblem(t, problems, "no stage \"compiler\"")
}

func TestDockerfileCheckRejectsRootUserAndCompilerWithoutClang(t *testing.T) {
	src, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	// The services target loses its USER (so it runs as the base image's root) and the compiler
	// target installs no clang: both must be reported.
	text = strings.Replace(text, "FROM runtime-base AS services\nUSER 10001:10001\n", "FROM runtime-base AS services\n", 1)
	text = strings.Replace(text, "clang-19 build-essential bubblewrap", "build-essential bubblewrap", 1)
	if text == string(src) {
		t.Fatal("the mutations did not apply: update this test with the Dockerfile")
	}
	d, err := ParseDockerfile(write(t, t.TempDir()+"/Dockerfile", text))
	if err != nil {
		t.Fatal(err)
	}
	problems := d.Check(ProjectDockerfile)
	wantProblem(t, problems, `stage "services" runs as`, "root")
	wantProblem(t, problems, `stage "compiler" does not install clang-19`)
}

func TestDockerfileCheckRejectsAWorkdirAwayFromTheBuiltTree(t *testing.T) {
	src, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "FROM runtime-base AS services\n", "FROM runtime-base AS services\nWORKDIR /srv\n", 1)
	if text == string(src) {
		t.Fatal("the mutation did not apply: update this test with the Dockerfile")
	}
	d, err := ParseDockerfile(write(t, t.TempDir()+"/Dockerfile", text))
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, d.Check(ProjectDockerfile), `stage "services" works in "/srv"`)
}

func trackedFiles(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("git", "-C", abs(t, "../.."), "ls-files").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestDockerignoreKeepsWhatTheBuildNeeds(t *testing.T) {
	d := mustParseDockerfile(t)
	ctx, err := ContextFiles(abs(t, "../.."), dockerfile+".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	noProblems(t, dockerfile+".dockerignore", d.CheckContext(ctx, trackedFiles(t)))
}

func TestDockerignoreCheckRejectsDroppingSourcesOrCopySources(t *testing.T) {
	d := mustParseDockerfile(t)
	src, err := os.ReadFile(dockerfile + ".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, extra, fragment string }{
		{"project sources", "libs/*/src\n", "libs/"},
		{"lock file", "package-lock.json\n", "package-lock.json is not in the build context"},
		{"a COPY source", "infra/docker\n", "copies infra/docker/health.js"},
		{"tests let in", "!test\n", "is in the build context: tests"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ignore := write(t, filepath.Join(t.TempDir(), "Dockerfile.dockerignore"), string(src)+c.extra)
			ctx, err := ContextFiles(abs(t, "../.."), ignore)
			if err != nil {
				t.Fatal(err)
			}
			wantProblem(t, d.CheckContext(ctx, trackedFiles(t)), c.fragment)
		})
	}
}

// --- Compose --------------------------------------------------------------------------------

func TestComposeDefaultRunsItsOwnKafkaAndPostgres(t *testing.T) {
	p, err := LoadCompose([]string{abs(t, composeFile)}, nil, nil)
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	noProblems(t, composeFile, CheckComposeProject(p, ComposeExpect{
		BundledKafka: true, BundledPostgres: true, KafkaBrokers: defaultKafka, DatabaseURL: defaultDBURL,
	}, mustParseDockerfile(t)))
}

func TestComposeWithExistingKafkaAndPostgres(t *testing.T) {
	d := mustParseDockerfile(t)
	env := map[string]string{"KAFKA_BROKERS": existingKafka, "DATABASE_URL": existingDBURL}
	cases := []struct {
		name  string
		files []string
		want  ComposeExpect
	}{
		{"kafka", []string{composeFile, extKafka}, ComposeExpect{BundledPostgres: true, KafkaBrokers: existingKafka, DatabaseURL: existingDBURL}},
		{"postgres", []string{composeFile, extPostgres}, ComposeExpect{BundledKafka: true, KafkaBrokers: existingKafka, DatabaseURL: existingDBURL}},
		{"both", []string{composeFile, extKafka, extPostgres}, ComposeExpect{KafkaBrokers: existingKafka, DatabaseURL: existingDBURL}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var files []string
			for _, f := range c.files {
				files = append(files, abs(t, f))
			}
			p, err := LoadCompose(files, env, nil)
			if err != nil {
				t.Fatalf("does not load: %v", err)
			}
			noProblems(t, strings.Join(c.files, " + "), CheckComposeProject(p, c.want, d))
			// The bundled one is still there, behind its profile.
			if c.name != "postgres" {
				if p, err = LoadCompose(files, env, []string{"bundled-kafka"}); err != nil || p.Services["kafka"].Name == "" {
					t.Fatalf("profile bundled-kafka does not bring Kafka back: %v", err)
				}
			}
		})
	}
}

func TestComposeExternalKafkaWithoutBrokersIsRefused(t *testing.T) {
	_, err := LoadCompose([]string{abs(t, composeFile), abs(t, extKafka)}, nil, nil)
	wantError(t, err, "set KAFKA_BROKERS")
	_, err = LoadCompose([]string{abs(t, composeFile), abs(t, extPostgres)}, nil, nil)
	wantError(t, err, "set DATABASE_URL")
}

func TestComposeSchemaRejectsWrongTypesAndUnknownFields(t *testing.T) {
	dir := t.TempDir()
	base := "services:\n  gateway:\n    image: dsu-services\n"
	for _, c := range []struct{ name, yaml, fragment string }{
		{"wrong type", base + "    healthcheck:\n      test: [CMD, 'true']\n      retries: many\n", "retries"},
		{"unknown field", base + "    pidd: host\n", "pidd"},
		{"ports not a list", base + "    ports: {web: 7400}\n", "ports"},
		{"undefined service", base + "    depends_on: [kafka]\n", "undefined service"},
		{"undefined volume", base + "    volumes: ['dsu-home:/var/lib/dsu']\n", "dsu-home"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadCompose([]string{write(t, dir+"/"+strings.ReplaceAll(c.name, " ", "-")+".yaml", c.yaml)}, nil, nil)
			wantError(t, err, c.fragment)
		})
	}
}

func TestComposeCheckRejectsAnApplierOutsideTheHostPidNamespace(t *testing.T) {
	src, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "    pid: host\n", "", 1)
	text = strings.Replace(text, "      DSU_RUN_DIR: ${DSU_RUN_DIR:-/run/dsu}\n", "      DSU_RUN_DIR: /tmp/run\n", 1)
	if text == string(src) {
		t.Fatal("the mutation did not apply: update this test with compose.yaml")
	}
	path := write(t, filepath.Join(t.TempDir(), "compose.yaml"), text)
	p, err := LoadCompose([]string{path}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	problems := CheckComposeProject(p, ComposeExpect{BundledKafka: true, BundledPostgres: true, KafkaBrokers: defaultKafka, DatabaseURL: defaultDBURL}, mustParseDockerfile(t))
	wantProblem(t, problems, "applier", "pid")
	wantProblem(t, problems, "DSU_RUN_DIR", "/tmp/run")
}

// --- Kubernetes -----------------------------------------------------------------------------

func TestKustomizeBaseRendersDecodesStrictlyAndConforms(t *testing.T) {
	objs, err := RenderKustomize(k8sBase)
	if err != nil {
		t.Fatal(err)
	}
	noProblems(t, k8sBase, CheckK8s(objs, baseSecrets))
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.Kind]++
	}
	if kinds["Deployment"] != 4 || kinds["DaemonSet"] != 1 || kinds["ConfigMap"] != 1 {
		t.Fatalf("rendered kinds %v", kinds)
	}
}

// The base refers to Secrets it does not render; without saying so, that is an error.
func TestKustomizeBaseNeedsItsSecrets(t *testing.T) {
	objs, err := RenderKustomize(k8sBase)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, CheckK8s(objs, K8sExpect{}), "Secret dsu-secrets", "not rendered")
}

// The example overlay with its secret files filled in: Secrets generated, images renamed, all
// references resolved without any external Secret.
func TestKustomizeExampleOverlay(t *testing.T) {
	dir := t.TempDir()
	overlay := filepath.Join(dir, "overlays", "example")
	if err := os.MkdirAll(filepath.Join(dir, "base"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"base", "overlays/example"} {
		entries, err := os.ReadDir(filepath.Join("../k8s", sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() == "dsu-secrets.env" || strings.HasSuffix(e.Name(), ".pem") {
				continue // a real deployment's secrets, never read here
			}
			b, err := os.ReadFile(filepath.Join("../k8s", sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dir, sub, e.Name()), string(b))
		}
	}
	example, err := os.ReadFile(filepath.Join(overlay, "dsu-secrets.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(overlay, "dsu-secrets.env"), strings.Replace(string(example), "DSU_ARTIFACTS_TOKEN=", "DSU_ARTIFACTS_TOKEN=dsu_test", 1))
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(priv)
	pubDER, _ := x509.MarshalPKIXPublicKey(pub)
	write(t, filepath.Join(overlay, "checker-ed25519.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})))
	write(t, filepath.Join(overlay, "checker-ed25519.pub.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})))

	objs, err := RenderKustomize(overlay)
	if err != nil {
		t.Fatal(err)
	}
	noProblems(t, k8sExample, CheckK8s(objs, K8sExpect{}))
	secrets := 0
	for _, o := range objs {
		if o.Kind == "Secret" {
			secrets++
		}
	}
	if secrets != 2 {
		t.Fatalf("%d Secrets rendered, expected dsu-secrets and dsu-checker-key", secrets)
	}

	// Without the filled-in secrets file kustomize itself refuses.
	os.Remove(filepath.Join(overlay, "dsu-secrets.env"))
	_, err = RenderKustomize(overlay)
	wantError(t, err, "dsu-secrets.env")
}

// overlay writes a kustomization over the real base with the given JSON patches and renders it.
func overlay(t *testing.T, patches string) ([]Object, error) {
	t.Helper()
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, abs(t, k8sBase))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "kustomization.yaml"), "resources:\n  - "+rel+"\npatches:\n"+patches)
	return RenderKustomize(dir)
}

func TestKubernetesStrictDecodingRejectsUnknownFieldsAndWrongTypes(t *testing.T) {
	for _, c := range []struct{ name, patch, fragment string }{
		{"unknown field", `
  - target: {kind: Deployment, name: gateway}
    patch: |-
      - op: add
        path: /spec/template/spec/containers/0/livenessProbe/httpGet/pathh
        value: /health
`, `unknown field "spec.template.spec.containers[0].livenessProbe.httpGet.pathh"`},
		{"wrong type", `
  - target: {kind: Deployment, name: compiler}
    patch: |-
      - op: replace
        path: /spec/replicas
        value: two
`, "replicas"},
		{"unknown kind", `
  - target: {kind: ConfigMap, name: dsu-config}
    patch: |-
      - op: replace
        path: /kind
        value: ConfigMapp
`, "ConfigMapp"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := overlay(t, c.patch)
			wantError(t, err, c.fragment)
		})
	}
}

func TestKustomizeRejectsAMissingResource(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "kustomization.yaml"), "resources:\n  - deployment.yaml\n")
	_, err := RenderKustomize(dir)
	wantError(t, err, "deployment.yaml")
}

func TestKubernetesCheckRejectsWhatIssue15Forbids(t *testing.T) {
	for _, c := range []struct {
		name, patch string
		fragments   []string
	}{
		{"applier without host pids", `
  - target: {kind: DaemonSet, name: applier}
    patch: |-
      - op: remove
        path: /spec/template/spec/hostPID
`, []string{"applier", "hostPID"}},
		{"run dir not mounted", `
  - target: {kind: DaemonSet, name: applier}
    patch: |-
      - op: replace
        path: /spec/template/spec/volumes/0/hostPath/path
        value: /var/run/other
`, []string{"DSU_RUN_DIR", "hostPath"}},
		{"probe elsewhere", `
  - target: {kind: Deployment, name: patcher}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/readinessProbe/httpGet/path
        value: /healthz
`, []string{"patcher", "no readiness probe on GET /health or /health/ready"}},
		{"liveness on dependencies", `
  - target: {kind: DaemonSet, name: applier}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/livenessProbe/httpGet/path
        value: /health/ready
`, []string{"applier", "no liveness probe on GET /health or /health/live"}},
		{"root pod", `
  - target: {kind: Deployment, name: checker}
    patch: |-
      - op: replace
        path: /spec/template/spec/securityContext/runAsNonRoot
        value: false
`, []string{"checker", "runAsNonRoot"}},
		{"selector misses pods", `
  - target: {kind: Service, name: gateway}
    patch: |-
      - op: replace
        path: /spec/selector/app.kubernetes.io~1name
        value: gatway
`, []string{"Service gateway", "matches no pod"}},
		{"missing ConfigMap", `
  - target: {kind: Deployment, name: gateway}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/envFrom/0/configMapRef/name
        value: dsu-settings
`, []string{"ConfigMap dsu-settings"}},
		{"no requests", `
  - target: {kind: Deployment, name: compiler}
    patch: |-
      - op: remove
        path: /spec/template/spec/containers/0/resources/requests
`, []string{"compiler", "no CPU request"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			objs, err := overlay(t, c.patch)
			if err != nil {
				t.Fatal(err)
			}
			wantProblem(t, CheckK8s(objs, baseSecrets), c.fragments...)
		})
	}
}
