package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// LoadCompose loads Compose files the way `docker compose config` does, with compose-go (the
// Compose specification's reference loader): YAML, merge of the files in order, interpolation
// from env (only env: the caller's environment does not leak in), validation against the
// specification's JSON schema, profiles, and the consistency checks (a dependency on an undefined
// service, an undefined volume or network, ...).
func LoadCompose(files []string, env map[string]string, profiles []string) (*types.Project, error) {
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	sort.Strings(envList)
	opts, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(filepath.Dir(files[0])),
		cli.WithEnv(envList),
		cli.WithProfiles(profiles),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// PipelineServices are the five services; each runs `node apps/<name>/dist/main.js` and answers
// GET /health on DSU_<NAME>_PORT (apps/<name>/src/main.ts).
var PipelineServices = []string{"gateway", "compiler", "patcher", "checker", "applier"}

// ComposeExpect says which backing services a loaded project should contain and what the
// services' Kafka and PostgreSQL settings should resolve to.
type ComposeExpect struct {
	BundledKafka, BundledPostgres bool
	KafkaBrokers, DatabaseURL     string
}

// CheckComposeProject returns every way p differs from what issue 15 asks of the Compose file.
// dockerfile is the parsed infra Dockerfile: build targets and the health check script are
// checked against it.
func CheckComposeProject(p *types.Project, want ComposeExpect, dockerfile *Dockerfile) []string {
	var errs []string
	fail := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	for name, bundled := range map[string]bool{"kafka": want.BundledKafka, "postgres": want.BundledPostgres} {
		_, ok := p.Services[name]
		if ok != bundled {
			fail("service %s: present=%v, expected %v", name, ok, bundled)
		}
	}
	var shared []string // the DSU_HOME volume of the services that share the artifact store
	for _, name := range PipelineServices {
		s, ok := p.Services[name]
		if !ok {
			fail("service %s is missing", name)
			continue
		}
		env := func(k string) string {
			if v := s.Environment[k]; v != nil {
				return *v
			}
			return ""
		}
		if got := strings.Join(s.Command, " "); got != "node apps/"+name+"/dist/main.js" {
			fail("service %s: command is %q, not node apps/%s/dist/main.js", name, got, name)
		}
		if env("DSU_"+strings.ToUpper(name)+"_PORT") == "" {
			fail("service %s: DSU_%s_PORT is not set", name, strings.ToUpper(name))
		}
		if env("KAFKA_BROKERS") != want.KafkaBrokers {
			fail("service %s: KAFKA_BROKERS is %q, expected %q", name, env("KAFKA_BROKERS"), want.KafkaBrokers)
		}
		if env("DATABASE_URL") != want.DatabaseURL {
			fail("service %s: DATABASE_URL is %q, expected %q", name, env("DATABASE_URL"), want.DatabaseURL)
		}
		if env("DSU_BIND") != "0.0.0.0" {
			fail("service %s: DSU_BIND is %q: in a container the service must listen on 0.0.0.0", name, env("DSU_BIND"))
		}
		hc := s.HealthCheck
		if hc == nil || hc.Disable || !strings.Contains(strings.Join(hc.Test, " "), "health.js") {
			fail("service %s: no health check on /health (infra/docker/health.js)", name)
		}
		for dep, d := range s.DependsOn {
			// compose drops a dependency that is not required on a service switched off by profile.
			if _, ok := p.Services[dep]; !ok && d.Required {
				fail("service %s depends on %s, which is not in the project", name, dep)
			} else if (dep == "kafka" || dep == "postgres") && d.Condition != types.ServiceConditionHealthy {
				fail("service %s: depends on %s without condition service_healthy", name, dep)
			}
		}
		// The image: the compiler's build target carries clang; the others share one image.
		target := "services"
		if name == "compiler" {
			target = "compiler"
		}
		if name != "applier" || s.Build != nil {
			if s.Build == nil {
				fail("service %s: no build section", name)
			} else {
				if s.Build.Target != target {
					fail("service %s: build target %q, expected %q", name, s.Build.Target, target)
				}
				if dockerfile != nil && dockerfile.Stage(s.Build.Target) == nil {
					fail("service %s: build target %q is not a stage of %s", name, s.Build.Target, dockerfile.Path)
				}
				if filepath.Base(s.Build.Dockerfile) != "Dockerfile" {
					fail("service %s: builds %s, not infra/docker/Dockerfile", name, s.Build.Dockerfile)
				}
			}
		}
		if name == "applier" {
			if s.Pid != "host" {
				fail("service applier: pid is %q: it must share the host's pid namespace (sockets are named by host pids)", s.Pid)
			}
			for _, k := range []string{"DSU_RUN_DIR", "DSU_HOME"} {
				dir := env(k)
				if !hasBind(s, dir, dir) {
					fail("service applier: %s=%q is not a host directory bound at the same path", k, dir)
				}
			}
			if env("DSU_ARTIFACTS_URL") == "" {
				fail("service applier: DSU_ARTIFACTS_URL is not set (it downloads bundles from the gateway)")
			}
			if env("DSU_TRUSTED_KEY") == "" {
				fail("service applier: DSU_TRUSTED_KEY is not set (the checker's public key)")
			}
			continue
		}
		if s.User != "" && rootUser.MatchString(s.User) {
			fail("service %s runs as root (user %q)", name, s.User)
		}
		home := env("DSU_HOME")
		vol := ""
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume && v.Target == home {
				vol = v.Source
			}
		}
		if vol == "" {
			fail("service %s: DSU_HOME=%q is not on a named volume (the shared artifact store)", name, home)
		}
		shared = append(shared, vol)
	}
	for _, v := range shared {
		if v != shared[0] {
			fail("gateway, compiler, patcher and checker do not share one DSU_HOME volume: %v", shared)
			break
		}
	}
	if g, ok := p.Services["gateway"]; ok && len(g.Ports) == 0 {
		fail("service gateway publishes no port")
	}
	if dockerfile != nil {
		copied := false
		for _, st := range dockerfile.Stages {
			for _, c := range st.Commands {
				if cp, ok := c.(*instructions.CopyCommand); ok && cp.DestPath == "/opt/dsu/infra/docker/health.js" {
					copied = true
				}
			}
		}
		if !copied {
			fail("the health checks run /opt/dsu/infra/docker/health.js, which %s does not COPY", dockerfile.Path)
		}
	}
	return errs
}

func hasBind(s types.ServiceConfig, source, target string) bool {
	if source == "" {
		return false
	}
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == source && v.Target == target {
			return true
		}
	}
	return false
}
