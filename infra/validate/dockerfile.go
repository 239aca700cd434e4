package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Dockerfile is a parsed Dockerfile: BuildKit's own parser and instruction decoder (what
// `docker build` runs), with BuildKit's linter rules that run at parse time turned into errors.
type Dockerfile struct {
	Path   string
	Stages []instructions.Stage
}

// ParseDockerfile parses path with BuildKit; parse errors, parser warnings (e.g. empty
// continuation lines) and lint findings (e.g. `FROM x as y` casing) are all errors.
func ParseDockerfile(path string) (*Dockerfile, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var problems []string
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		problems = append(problems, fmt.Sprintf("line %d: %s", line, w.Short))
	}
	lint := linter.New(&linter.Config{
		Warn: func(rule, _desc, _url, msg string, loc []parser.Range) {
			problems = append(problems, fmt.Sprintf("line %d: %s: %s", firstLine(loc), rule, msg))
		},
	})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: BuildKit reports:\n  %s", path, strings.Join(problems, "\n  "))
	}
	return &Dockerfile{Path: path, Stages: stages}, nil
}

func firstLine(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

// Stage returns the named stage, or nil.
func (d *Dockerfile) Stage(name string) *instructions.Stage {
	for i := range d.Stages {
		if strings.EqualFold(d.Stages[i].Name, name) {
			return &d.Stages[i]
		}
	}
	return nil
}

// chain is the stage and the stages it is built FROM, innermost first (an image is not a stage).
func (d *Dockerfile) chain(s *instructions.Stage) []*instructions.Stage {
	out := []*instructions.Stage{s}
	for seen := 0; seen < len(d.Stages); seen++ {
		base := d.Stage(out[len(out)-1].BaseName)
		if base == nil {
			break
		}
		out = append(out, base)
	}
	return out
}

// EffectiveUser is the USER a stage's image runs as ("" = the base image's, root for the
// official node images), following USER through the stages it is built FROM.
func (d *Dockerfile) EffectiveUser(s *instructions.Stage) string {
	for _, st := range d.chain(s) {
		for i := len(st.Commands) - 1; i >= 0; i-- {
			if u, ok := st.Commands[i].(*instructions.UserCommand); ok {
				return u.User
			}
		}
	}
	return ""
}

// Workdir is the stage's last WORKDIR, following the stages it is built FROM ("" = none).
func (d *Dockerfile) Workdir(s *instructions.Stage) string {
	for _, st := range d.chain(s) {
		for i := len(st.Commands) - 1; i >= 0; i-- {
			if w, ok := st.Commands[i].(*instructions.WorkdirCommand); ok {
				return strings.TrimSuffix(w.Path, "/")
			}
		}
	}
	return ""
}

// RunText is every RUN command of the stage and of the stages it is built FROM, joined.
func (d *Dockerfile) RunText(s *instructions.Stage) string {
	var b strings.Builder
	for _, st := range d.chain(s) {
		for _, c := range st.Commands {
			if r, ok := c.(*instructions.RunCommand); ok {
				b.WriteString(strings.Join(r.CmdLine, " "))
				b.WriteString("\n")
			}
		}
	}
	return b.String()
}

var rootUser = regexp.MustCompile(`^(root|0)(:.*)?$`)

// installs reports whether an apt-get install in text names pkg.
func installs(text, pkg string) bool {
	re := regexp.MustCompile(`apt-get install[^\n&|;]*\s` + regexp.QuoteMeta(pkg) + `(\s|$)`)
	return re.MatchString(text)
}

// DockerfileSpec is what the project's Dockerfile must be (issue 15): multi-stage, a build stage
// that installs and builds with npm ci + Nx, non-root runtime targets, the compiler's with clang.
type DockerfileSpec struct {
	BuildStage    string
	Targets       []string // runtime targets; the last is the default (the file's last stage)
	CompilerStage string
}

var ProjectDockerfile = DockerfileSpec{BuildStage: "build", Targets: []string{"compiler", "services"}, CompilerStage: "compiler"}

// Check returns every way d differs from spec (empty: it conforms).
func (d *Dockerfile) Check(spec DockerfileSpec) []string {
	var errs []string
	if len(d.Stages) < 2 {
		errs = append(errs, fmt.Sprintf("%d stage(s): the image must be multi-stage (a build stage, runtime stages that copy from it)", len(d.Stages)))
	}
	build := d.Stage(spec.BuildStage)
	if build == nil {
		errs = append(errs, fmt.Sprintf("no build stage %q", spec.BuildStage))
	} else {
		text := d.RunText(build)
		if !strings.Contains(text, "npm ci") {
			errs = append(errs, fmt.Sprintf("stage %q does not run `npm ci` (installs exactly what package-lock.json says)", build.Name))
		}
		if !regexp.MustCompile(`nx run-many -t build`).MatchString(text) {
			errs = append(errs, fmt.Sprintf("stage %q does not run the Nx build (`nx run-many -t build`)", build.Name))
		}
	}
	if len(d.Stages) > 0 && len(spec.Targets) > 0 {
		last := d.Stages[len(d.Stages)-1].Name
		if want := spec.Targets[len(spec.Targets)-1]; !strings.EqualFold(last, want) {
			errs = append(errs, fmt.Sprintf("the last stage (the default target) is %q, not %q", last, want))
		}
	}
	for _, name := range spec.Targets {
		s := d.Stage(name)
		if s == nil {
			errs = append(errs, fmt.Sprintf("no stage %q (a build target that compose.yaml and the docs name)", name))
			continue
		}
		user := d.EffectiveUser(s)
		if user == "" || rootUser.MatchString(user) {
			errs = append(errs, fmt.Sprintf("stage %q runs as %s: a runtime image must end with a non-root USER", name, orRoot(user)))
		}
		// The services start as `node apps/<service>/dist/main.js` relative to the working
		// directory: it must be where the build stage's tree was copied to.
		copiesBuild := false
		buildDir := ""
		if build != nil {
			buildDir = d.Workdir(build)
		}
		for _, st := range d.chain(s) {
			for _, c := range st.Commands {
				if cp, ok := c.(*instructions.CopyCommand); ok && build != nil && strings.EqualFold(cp.From, build.Name) &&
					len(cp.SourcePaths) == 1 && strings.TrimSuffix(cp.SourcePaths[0], "/") == buildDir && strings.TrimSuffix(cp.DestPath, "/") == buildDir {
					copiesBuild = true
				}
			}
		}
		if !copiesBuild {
			errs = append(errs, fmt.Sprintf("stage %q does not copy the build stage's tree (COPY --from=%s %s %s)", name, spec.BuildStage, buildDir, buildDir))
		}
		if wd := d.Workdir(s); buildDir != "" && wd != buildDir {
			errs = append(errs, fmt.Sprintf("stage %q works in %q, not %q where the built tree is (node apps/<service>/dist/main.js is relative)", name, wd, buildDir))
		}
		var hasCmd, hasHealth bool
		for _, st := range d.chain(s) {
			for _, c := range st.Commands {
				switch c := c.(type) {
				case *instructions.CmdCommand:
					hasCmd = true
					if c.PrependShell {
						errs = append(errs, fmt.Sprintf("stage %q: CMD in shell form (no signals reach node): use the JSON form", st.Name))
					}
				case *instructions.EntrypointCommand:
					if c.PrependShell {
						errs = append(errs, fmt.Sprintf("stage %q: ENTRYPOINT in shell form: use the JSON form", st.Name))
					}
				case *instructions.HealthCheckCommand:
					hasHealth = true
				}
			}
		}
		if !hasCmd {
			errs = append(errs, fmt.Sprintf("stage %q has no CMD", name))
		}
		if !hasHealth {
			errs = append(errs, fmt.Sprintf("stage %q has no HEALTHCHECK (GET /health)", name))
		}
		text := d.RunText(s)
		clang := installs(text, "clang-19")
		if strings.EqualFold(name, spec.CompilerStage) {
			if !clang {
				errs = append(errs, fmt.Sprintf("stage %q does not install clang-19 (dsu-cc's compiler)", name))
			}
			if !installs(text, "make") && !installs(text, "build-essential") {
				errs = append(errs, fmt.Sprintf("stage %q does not install make (submitted versions build with make CC=dsu-cc)", name))
			}
			if !installs(text, "bubblewrap") {
				errs = append(errs, fmt.Sprintf("stage %q does not install bubblewrap (the build sandbox)", name))
			}
		} else if clang {
			errs = append(errs, fmt.Sprintf("stage %q installs clang-19: only the compiler's image needs it", name))
		}
	}
	return errs
}

func orRoot(user string) string {
	if user == "" {
		return "the base image's user (root)"
	}
	return "root (" + user + ")"
}

// ContextFiles is the build context `docker build` sends from root with the given ignore file:
// the files of a clean checkout (git ls-files) less what the ignore patterns exclude, matched
// with moby/patternmatcher, the matcher BuildKit and the docker CLI use for .dockerignore.
func ContextFiles(root, ignoreFile string) (map[string]bool, error) {
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files in %s: %w (the context check needs the git checkout)", root, err)
	}
	f, err := os.Open(ignoreFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ignoreFile, err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ignoreFile, err)
	}
	files := map[string]bool{}
	for _, p := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if p == "" {
			continue
		}
		excluded, err := pm.MatchesOrParentMatches(p)
		if err != nil {
			return nil, err
		}
		if !excluded {
			files[p] = true
		}
	}
	return files, nil
}

// CheckContext returns what the build would miss or carry needlessly: every tracked file of the
// workspace's projects (apps/, libs/) and the root build files must be in the context, every
// COPY source from the context must be there, and tests and benches stay out.
func (d *Dockerfile) CheckContext(context map[string]bool, tracked []string) []string {
	var errs []string
	for _, f := range []string{"package.json", "package-lock.json", "nx.json", "tsconfig.base.json"} {
		if !context[f] {
			errs = append(errs, fmt.Sprintf("%s is not in the build context (npm ci / the Nx build need it)", f))
		}
	}
	missing := 0
	for _, f := range tracked {
		if (strings.HasPrefix(f, "apps/") || strings.HasPrefix(f, "libs/")) && !context[f] {
			if missing++; missing <= 5 {
				errs = append(errs, fmt.Sprintf("%s is not in the build context: the ignore file drops a tracked file of a project the build needs", f))
			}
		}
		if (strings.HasPrefix(f, "test/") || strings.HasPrefix(f, "bench/")) && context[f] {
			errs = append(errs, fmt.Sprintf("%s is in the build context: tests and benches are not needed to run the services", f))
			break
		}
	}
	for _, st := range d.Stages {
		for _, c := range st.Commands {
			cp, ok := c.(*instructions.CopyCommand)
			if !ok || cp.From != "" {
				continue
			}
			for _, src := range cp.SourcePaths {
				src = strings.TrimPrefix(strings.TrimPrefix(src, "./"), "/")
				if src == "." || src == "" {
					continue
				}
				found := context[src]
				for f := range context {
					found = found || strings.HasPrefix(f, src+"/")
				}
				if !found {
					errs = append(errs, fmt.Sprintf("stage %q copies %s, which is not in the build context", st.Name, src))
				}
			}
		}
	}
	return errs
}
