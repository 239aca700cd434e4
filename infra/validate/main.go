// Command validate checks deployment files with the ecosystem's own parsers, for an overlay or a
// Compose file of your own (the repository's files are checked by `go test`, see docs/deploy.md):
//
//	go run . -kustomize ../k8s/overlays/prod -external-secrets dsu-secrets,dsu-checker-key
//	go run . -compose ../compose/compose.yaml,../compose/external-kafka.yaml -profile ''
//	go run . -dockerfile ../docker/Dockerfile
//
// Compose files are interpolated from this process's environment. Exit status 1 when anything is
// wrong, with every problem listed.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	var kdirs, composeFiles, dockerfile, secrets, profiles string
	flag.StringVar(&kdirs, "kustomize", "", "kustomization directories, comma-separated: render, decode strictly, check")
	flag.StringVar(&composeFiles, "compose", "", "Compose files merged in order, comma-separated: load and validate (schema, consistency)")
	flag.StringVar(&profiles, "profile", "", "Compose profiles to enable, comma-separated")
	flag.StringVar(&dockerfile, "dockerfile", "", "a Dockerfile: parse and lint with BuildKit, check the stages issue 15 asks for")
	flag.StringVar(&secrets, "external-secrets", "", "Secrets the manifests may reference without rendering them, comma-separated")
	flag.Parse()
	if kdirs == "" && composeFiles == "" && dockerfile == "" {
		fmt.Fprintln(os.Stderr, "validate: nothing to check; give -kustomize, -compose or -dockerfile (the repository's own files: go test ./...)")
		os.Exit(2)
	}
	var problems []string
	add := func(where string, errs ...string) {
		for _, e := range errs {
			problems = append(problems, where+": "+e)
		}
	}
	if dockerfile != "" {
		if d, err := ParseDockerfile(dockerfile); err != nil {
			add(dockerfile, err.Error())
		} else {
			add(dockerfile, d.Check(ProjectDockerfile)...)
		}
	}
	if composeFiles != "" {
		env := map[string]string{}
		for _, kv := range os.Environ() {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
		if _, err := LoadCompose(split(composeFiles), env, split(profiles)); err != nil {
			add(composeFiles, err.Error())
		}
	}
	for _, dir := range split(kdirs) {
		objs, err := RenderKustomize(dir)
		if err != nil {
			add(dir, err.Error())
			continue
		}
		add(dir, CheckK8s(objs, K8sExpect{ExternalSecrets: split(secrets)})...)
		if len(problems) == 0 {
			fmt.Printf("%s: %d objects render and decode strictly\n", dir, len(objs))
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "validate: %d problem(s):\n  %s\n", len(problems), strings.Join(problems, "\n  "))
		os.Exit(1)
	}
	fmt.Println("validate: OK")
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
