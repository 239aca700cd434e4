package main

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The kinds a deployment of dsu may contain; anything else is an error (a typo in a kind, or a
// kind this validator cannot check).
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme,
		autoscalingv2.AddToScheme, batchv1.AddToScheme, rbacv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// strict decodes like the API server with fieldValidation=Strict: an unknown or duplicate field,
// or a value of the wrong type, is an error.
var strict = serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()

// Object is one rendered manifest, decoded into its Kubernetes API type.
type Object struct {
	Kind, Namespace, Name string
	Obj                   runtime.Object
}

// RenderKustomize builds a kustomization directory with kustomize's own library (what `kubectl
// apply -k` and `kustomize build` run) and strictly decodes every resource it renders.
func RenderKustomize(dir string) ([]Object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out []Object
	var errs []string
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		obj, gvk, err := strict.Decode(y, nil, nil)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s %s: %v", r.GetKind(), r.GetName(), err))
			continue
		}
		out = append(out, Object{Kind: gvk.Kind, Namespace: r.GetNamespace(), Name: r.GetName(), Obj: obj})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("kustomize build %s: %d resource(s) do not decode strictly:\n  %s", dir, len(errs), strings.Join(errs, "\n  "))
	}
	return out, nil
}

// K8sExpect: Secrets the manifests may reference without rendering them (the base leaves them to
// the operator or an overlay).
type K8sExpect struct {
	ExternalSecrets []string
}

// CheckK8s returns every way the rendered objects differ from what issue 15 asks: Deployments for
// gateway, compiler, patcher and checker, the applier as a DaemonSet in the host pid namespace with
// the run directory mounted and DSU_HOST_ID from the node name, probes on /health, config from a
// ConfigMap and Secrets, resource requests, non-root pods except the applier; and what the API
// server or kubelet would refuse or never resolve: invalid names and labels, selectors that miss
// their pods, references to ConfigMaps, Secrets, claims or ports that do not exist.
func CheckK8s(objs []Object, want K8sExpect) []string {
	var errs []string
	fail := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	// References resolve by kind, namespace and name, as the kubelet resolves them.
	have := map[string]bool{}
	for _, o := range objs {
		have[o.Kind+"/"+o.Namespace+"/"+o.Name] = true
		m, _ := o.Obj.(metav1.Object)
		for _, e := range validation.IsDNS1123Subdomain(o.Name) {
			fail("%s %s: name: %s", o.Kind, o.Name, e)
		}
		if m != nil {
			for k, v := range m.GetLabels() {
				for _, e := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
					fail("%s %s: label %s=%s: %s", o.Kind, o.Name, k, v, e)
				}
			}
		}
	}
	external := map[string]bool{}
	for _, s := range want.ExternalSecrets {
		external["Secret/"+s] = true
	}
	pods := map[string]corev1.PodTemplateSpec{}
	for _, o := range objs {
		var tmpl corev1.PodTemplateSpec
		var sel *metav1.LabelSelector
		switch w := o.Obj.(type) {
		case *appsv1.Deployment:
			tmpl, sel = w.Spec.Template, w.Spec.Selector
		case *appsv1.DaemonSet:
			tmpl, sel = w.Spec.Template, w.Spec.Selector
		default:
			continue
		}
		id := o.Kind + " " + o.Name
		pods[o.Kind+"/"+o.Name] = tmpl
		if o.Namespace == "" {
			fail("%s has no namespace", id)
		}
		if s, err := metav1.LabelSelectorAsSelector(sel); err != nil || s.Empty() {
			fail("%s: selector %v is invalid or empty", id, sel)
		} else if !s.Matches(labels.Set(tmpl.Labels)) {
			fail("%s: selector %s does not match its pod labels %v", id, s, tmpl.Labels)
		}
		errs = append(errs, checkPod(id, tmpl.Spec, func(kind, name string) bool {
			return have[kind+"/"+o.Namespace+"/"+name] || external[kind+"/"+name]
		})...)
	}
	for _, name := range []string{"gateway", "compiler", "patcher", "checker"} {
		t, ok := pods["Deployment/"+name]
		if !ok {
			fail("no Deployment %s", name)
			continue
		}
		if len(t.Spec.Containers) == 0 || len(t.Spec.Containers[0].Args) < 2 || t.Spec.Containers[0].Args[1] != "apps/"+name+"/dist/main.js" {
			fail("Deployment %s: does not run node apps/%s/dist/main.js", name, name)
		}
		pc := t.Spec.SecurityContext
		if pc == nil || pc.RunAsNonRoot == nil || !*pc.RunAsNonRoot || pc.RunAsUser == nil || *pc.RunAsUser == 0 {
			fail("Deployment %s: the pod is not runAsNonRoot with a non-zero runAsUser", name)
		}
		if len(t.Spec.Containers) > 0 && !strings.Contains(t.Spec.Containers[0].Image, map[bool]string{true: "compiler", false: "services"}[name == "compiler"]) {
			fail("Deployment %s: image %q is not the %s image", name, t.Spec.Containers[0].Image, map[bool]string{true: "compiler", false: "services"}[name == "compiler"])
		}
	}
	if t, ok := pods["DaemonSet/applier"]; !ok {
		fail("no DaemonSet applier")
	} else {
		if !t.Spec.HostPID {
			fail("DaemonSet applier: hostPID is not set (control sockets are named by host pids)")
		}
		if len(t.Spec.Containers) > 0 {
			c := t.Spec.Containers[0]
			runDir := envValue(c, "DSU_RUN_DIR")
			if !mountsHostPath(t.Spec, c, runDir) {
				fail("DaemonSet applier: DSU_RUN_DIR=%q is not a hostPath mounted at the same path", runDir)
			}
			if home := envValue(c, "DSU_HOME"); !mountsHostPath(t.Spec, c, home) {
				fail("DaemonSet applier: DSU_HOME=%q is not a hostPath mounted at the same path (processes dlopen patches from it)", home)
			}
			hostID := false
			for _, e := range c.Env {
				if e.Name == "DSU_HOST_ID" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
					hostID = true
				}
			}
			if !hostID {
				fail("DaemonSet applier: DSU_HOST_ID does not come from spec.nodeName")
			}
		}
	}
	// Services: each selects some pod and targets a port it declares.
	for _, o := range objs {
		svc, ok := o.Obj.(*corev1.Service)
		if !ok {
			continue
		}
		matched := false
		for _, t := range pods {
			if len(svc.Spec.Selector) > 0 && labels.Set(svc.Spec.Selector).AsSelector().Matches(labels.Set(t.Labels)) {
				matched = true
				for _, p := range svc.Spec.Ports {
					if !declaresPort(t.Spec, p.TargetPort) {
						fail("Service %s: targetPort %s is not a port of the pods it selects", svc.Name, p.TargetPort.String())
					}
				}
			}
		}
		if !matched {
			fail("Service %s: selector %v matches no pod", svc.Name, svc.Spec.Selector)
		}
	}
	if !have["ConfigMap/dsu/dsu-config"] {
		fail("no ConfigMap dsu-config")
	}
	return errs
}

// checkPod: probes, requests, references, ports, privilege of one pod template.
func checkPod(id string, spec corev1.PodSpec, exists func(kind, name string) bool) []string {
	var errs []string
	fail := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(id+": "+f, a...)) }
	ref := func(kind, name string, optional *bool, what string) {
		if !exists(kind, name) && (optional == nil || !*optional) {
			fail("%s refers to %s %s, which is not rendered in the pod's namespace and not one of the Secrets left to the operator", what, kind, name)
		}
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		switch {
		case v.Secret != nil:
			ref("Secret", v.Secret.SecretName, v.Secret.Optional, "volume "+v.Name)
		case v.ConfigMap != nil:
			ref("ConfigMap", v.ConfigMap.Name, v.ConfigMap.Optional, "volume "+v.Name)
		case v.PersistentVolumeClaim != nil:
			ref("PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName, nil, "volume "+v.Name)
		}
	}
	configMap := false
	for _, c := range spec.Containers {
		cid := "container " + c.Name
		if c.Image == "" {
			fail("%s has no image", cid)
		}
		// Every service serves /health (503 while it starts), /health/live (the process answers)
		// and /health/ready (database and broker answer now): libs/service-kit, libs/services.
		for _, p := range []struct {
			name  string
			probe *corev1.Probe
			paths []string
		}{
			{"liveness", c.LivenessProbe, []string{"/health", "/health/live"}},
			{"readiness", c.ReadinessProbe, []string{"/health", "/health/ready"}},
			{"startup", c.StartupProbe, []string{"/health"}},
		} {
			if p.probe == nil && p.name == "startup" {
				continue
			}
			if p.probe == nil || p.probe.HTTPGet == nil || !contains(p.paths, p.probe.HTTPGet.Path) {
				fail("%s: no %s probe on GET %s", cid, p.name, strings.Join(p.paths, " or "))
			} else if !declaresPort(spec, p.probe.HTTPGet.Port) {
				fail("%s: %s probe port %s is not a container port", cid, p.name, p.probe.HTTPGet.Port.String())
			}
		}
		if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
			fail("%s: no CPU request", cid)
		}
		if _, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok {
			fail("%s: no memory request", cid)
		}
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Privileged != nil && *sc.Privileged {
			fail("%s: allowPrivilegeEscalation is not false (or the container is privileged)", cid)
		}
		if sc != nil && (sc.Capabilities == nil || !hasCap(sc.Capabilities.Drop, "ALL")) {
			fail("%s: does not drop ALL capabilities", cid)
		}
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil {
				configMap = true
				ref("ConfigMap", e.ConfigMapRef.Name, e.ConfigMapRef.Optional, cid+" envFrom")
			}
			if e.SecretRef != nil {
				ref("Secret", e.SecretRef.Name, e.SecretRef.Optional, cid+" envFrom")
			}
		}
		port := ""
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ref("Secret", e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Optional, cid+" env "+e.Name)
			}
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				ref("ConfigMap", e.ValueFrom.ConfigMapKeyRef.Name, e.ValueFrom.ConfigMapKeyRef.Optional, cid+" env "+e.Name)
			}
			if strings.HasPrefix(e.Name, "DSU_") && strings.HasSuffix(e.Name, "_PORT") {
				port = e.Value
			}
		}
		if port == "" {
			fail("%s: no DSU_<SERVICE>_PORT", cid)
		} else if !declaresPort(spec, intstr.Parse(port)) {
			fail("%s: listens on %s (DSU_<SERVICE>_PORT), which is not a container port", cid, port)
		}
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				fail("%s mounts volume %s, which the pod does not define", cid, m.Name)
			}
		}
	}
	if !configMap {
		fail("no container takes its settings from a ConfigMap (envFrom)")
	}
	return errs
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func mountsHostPath(spec corev1.PodSpec, c corev1.Container, dir string) bool {
	if dir == "" {
		return false
	}
	for _, m := range c.VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.HostPath != nil && v.HostPath.Path == dir {
				return true
			}
		}
	}
	return false
}

func declaresPort(spec corev1.PodSpec, p intstr.IntOrString) bool {
	for _, c := range spec.Containers {
		for _, cp := range c.Ports {
			if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
				return true
			}
		}
	}
	return false
}

func hasCap(caps []corev1.Capability, c string) bool {
	for _, x := range caps {
		if string(x) == c {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
