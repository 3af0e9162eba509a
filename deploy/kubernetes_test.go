package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The manifests' trust domain (deploy/kubernetes/spire): the SPIFFE IDs in
// flags are checked against the ClusterSPIFFEID templates rendered in it.
const trustDomain = "example.org"

// The SPIFFE CSI driver's name: a volume of it mounts the directory that
// holds the SPIRE agent's Workload API socket.
const spiffeCSIDriver = "csi.spiffe.io"

// pathUse is how a role uses a path flag.
type pathUse int

const (
	reads  pathUse = iota // a file or directory it reads
	writes                // a directory it writes, or a file in one
)

// role is what the checks know about one subcommand of a binary: the HTTP
// paths it serves in plain HTTP (where probes and Prometheus can reach it),
// its environment prefix, its default listen address and its path flags.
type role struct {
	served        map[string]bool
	tlsOnly       bool   // serves mutual TLS only: no HTTP probe can reach it
	envPrefix     string // flags may come from PREFIX<FLAG> variables
	listenDefault string
	paths         map[string]pathUse
}

var roles = map[string]role{
	"ztlog serve": {
		served:        map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true},
		envPrefix:     "ZTLOG_",
		listenDefault: "127.0.0.1:8443",
		paths: map[string]pathUse{"data-dir": writes, "key": reads, "receipt-key": reads, "policy": reads,
			"witness-policy": reads, "svid-cert": reads, "svid-key": reads, "bundle": reads, "jwt-bundle": reads,
			"user-jwks": reads, "config": reads},
	},
	"zt-witness serve": {
		served:        map[string]bool{"/healthz": true, "/metrics": true},
		envPrefix:     "ZTWITNESS_",
		listenDefault: "127.0.0.1:7380",
		paths: map[string]pathUse{"config": reads, "key": reads, "state": writes, "evidence": writes,
			"tls-cert": reads, "tls-key": reads},
	},
	"zt broker": {
		tlsOnly:       true,
		listenDefault: "127.0.0.1:8444",
		paths:         map[string]pathUse{"replay": writes, "outbox": writes, "bundle": reads, "trust-policy": reads},
	},
}

// flagSets are the flag names of each "binary subcommand", read from the
// built binaries' -h output, so a manifest cannot use a flag that does not
// exist.
type flagSets map[string]map[string]bool

var (
	flagsOnce sync.Once
	flagsVal  flagSets
	flagsErr  error
)

// binaryFlags builds ztlog, zt and zt-witness and reads the flags of the
// subcommands the manifests run.
func binaryFlags(t *testing.T) flagSets {
	t.Helper()
	flagsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ztlog-manifest-bin-")
		if err != nil {
			flagsErr = err
			return
		}
		defer os.RemoveAll(dir)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", "../cmd/ztlog", "../cmd/zt", "../cmd/zt-witness").CombinedOutput()
		if err != nil {
			flagsErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		flagsVal = flagSets{}
		flagLine := regexp.MustCompile(`(?m)^  -([A-Za-z0-9][A-Za-z0-9._-]*)`)
		for name := range roles {
			bin, sub, _ := strings.Cut(name, " ")
			// -h exits 0 or 2 depending on the command; the flags are printed either way.
			out, _ := exec.CommandContext(ctx, filepath.Join(dir, bin), sub, "-h").CombinedOutput()
			set := map[string]bool{}
			for _, m := range flagLine.FindAllStringSubmatch(string(out), -1) {
				set[m[1]] = true
			}
			if len(set) == 0 {
				flagsErr = fmt.Errorf("%s -h printed no flags:\n%s", name, out)
				return
			}
			flagsVal[name] = set
		}
	})
	if flagsErr != nil {
		t.Fatal(flagsErr)
	}
	return flagsVal
}

// workload is a Deployment's or StatefulSet's pod template with where it
// came from.
type workload struct {
	obj    object
	ns     string
	tmpl   *corev1.PodTemplateSpec
	claims map[string]bool // volumeClaimTemplates (StatefulSet)
}

func workloads(objs []object) []workload {
	var out []workload
	for _, o := range objs {
		switch v := o.value.(type) {
		case *appsv1.Deployment:
			out = append(out, workload{obj: o, ns: o.ns, tmpl: &v.Spec.Template})
		case *appsv1.StatefulSet:
			w := workload{obj: o, ns: o.ns, tmpl: &v.Spec.Template, claims: map[string]bool{}}
			for _, c := range v.Spec.VolumeClaimTemplates {
				w.claims[c.Name] = true
			}
			out = append(out, w)
		}
	}
	return out
}

// parsedContainer is a container's role and flags.
type parsedContainer struct {
	role  string            // "ztlog serve", or "" when not a ztlog binary
	flags map[string]string // --name=value
}

// checker collects the problems found in one set of objects.
type checker struct {
	flags flagSets
	errs  []string
}

func (c *checker) errorf(where, format string, a ...any) {
	c.errs = append(c.errs, where+": "+fmt.Sprintf(format, a...))
}

// check runs every wiring check on objs and returns the problems found.
func check(objs []object, flags flagSets) []string {
	c := &checker{flags: flags}
	ws := workloads(objs)
	parsed := map[*corev1.Container]parsedContainer{}
	for _, w := range ws {
		c.checkPod(w, parsed)
	}
	c.checkServiceAccounts(objs, ws)
	c.checkServices(objs, ws)
	c.checkPDBs(objs, ws)
	c.checkNetworkPolicies(objs, ws)
	c.checkSPIFFEIDs(objs, ws, parsed)
	return c.errs
}

func (c *checker) checkPod(w workload, parsed map[*corev1.Container]parsedContainer) {
	spec := &w.tmpl.Spec
	volumes := map[string]*corev1.Volume{}
	for i := range spec.Volumes {
		volumes[spec.Volumes[i].Name] = &spec.Volumes[i]
	}
	podNonRoot := spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot
	for i := range spec.Containers {
		ct := &spec.Containers[i]
		where := fmt.Sprintf("%s container %s", w.obj, ct.Name)
		for _, m := range ct.VolumeMounts {
			if volumes[m.Name] == nil && !w.claims[m.Name] {
				c.errorf(where, "volumeMount %s names no volume of the pod", m.Name)
			}
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := ct.Resources.Requests[r]; !ok {
				c.errorf(where, "resources.requests.%s is not set", r)
			}
		}
		sc := ct.SecurityContext
		nonRoot := podNonRoot || (sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot)
		if !nonRoot {
			c.errorf(where, "runAsNonRoot is not true (pod or container securityContext)")
		}
		readOnlyRoot := sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
		if !readOnlyRoot {
			c.errorf(where, "securityContext.readOnlyRootFilesystem is not true")
		}
		if len(ct.Command) != 1 {
			c.errorf(where, "command %q: want the one binary, with the subcommand first in args", ct.Command)
			continue
		}
		if len(ct.Args) == 0 {
			c.errorf(where, "args: want the subcommand first")
			continue
		}
		name := path.Base(ct.Command[0]) + " " + ct.Args[0]
		r, ok := roles[name]
		if !ok {
			c.errorf(where, "runs %q, which these checks do not know (add it to roles)", name)
			continue
		}
		p := parsedContainer{role: name, flags: map[string]string{}}
		known := c.flags[name]
		for _, a := range ct.Args[1:] {
			if !strings.HasPrefix(a, "--") || !strings.Contains(a, "=") {
				c.errorf(where, "argument %q: write flags as --name=value, one per item", a)
				continue
			}
			k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if !known[k] {
				c.errorf(where, "--%s is not a flag of `%s` (its -h lists no such flag)", k, name)
				continue
			}
			p.flags[k] = v
		}
		for _, e := range ct.Env {
			if r.envPrefix == "" || !strings.HasPrefix(e.Name, r.envPrefix) {
				continue
			}
			k := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(e.Name, r.envPrefix), "_", "-"))
			if !known[k] {
				c.errorf(where, "env %s: --%s is not a flag of `%s`", e.Name, k, name)
				continue
			}
			if _, dup := p.flags[k]; dup {
				c.errorf(where, "env %s and --%s both set; the flag wins, so one is dead", e.Name, k)
			}
			if e.ValueFrom == nil {
				p.flags[k] = e.Value
			}
		}
		parsed[ct] = p
		c.checkPaths(where, ct, r, p)
		if readOnlyRoot && mountFor(ct, "/tmp/x") == nil {
			c.errorf(where, "the root filesystem is read-only and nothing is mounted at /tmp")
		}
		c.checkWorkloadAPI(where, ct, volumes, p)
		port := c.checkListen(where, ct, r, p)
		c.checkProbes(where, ct, r, p, port)
		c.checkPrometheus(where, w.tmpl.Annotations, r, port)
	}
}

// mountFor is the volumeMount whose mountPath holds p (the longest).
func mountFor(ct *corev1.Container, p string) *corev1.VolumeMount {
	var best *corev1.VolumeMount
	for i := range ct.VolumeMounts {
		m := &ct.VolumeMounts[i]
		mp := strings.TrimSuffix(m.MountPath, "/")
		if (p == mp || strings.HasPrefix(p, mp+"/")) && (best == nil || len(mp) > len(best.MountPath)) {
			best = m
		}
	}
	return best
}

func (c *checker) checkPaths(where string, ct *corev1.Container, r role, p parsedContainer) {
	for flag, use := range r.paths {
		v, ok := p.flags[flag]
		if !ok || v == "" {
			continue
		}
		for _, f := range strings.Split(v, ",") {
			if !path.IsAbs(f) {
				c.errorf(where, "--%s=%s: want an absolute path on a mounted volume", flag, f)
				continue
			}
			m := mountFor(ct, f)
			if m == nil {
				c.errorf(where, "--%s=%s is not on a volume: no volumeMount holds it (the image's root is empty and read-only)", flag, f)
				continue
			}
			if use == writes && m.ReadOnly {
				c.errorf(where, "--%s=%s is written, but its volume %s is mounted read-only at %s", flag, f, m.Name, m.MountPath)
			}
		}
	}
}

func (c *checker) checkWorkloadAPI(where string, ct *corev1.Container, volumes map[string]*corev1.Volume, p parsedContainer) {
	addrs := map[string]string{}
	if v, ok := p.flags["workload-api"]; ok && v != "env" {
		addrs["--workload-api"] = v
	}
	for _, e := range ct.Env {
		if e.Name == "SPIFFE_ENDPOINT_SOCKET" {
			addrs["env SPIFFE_ENDPOINT_SOCKET"] = e.Value
		}
	}
	seen := ""
	for what, addr := range addrs {
		sock, ok := strings.CutPrefix(addr, "unix://")
		if !ok || !path.IsAbs(sock) {
			c.errorf(where, "%s=%s: want unix:///absolute/path/to/socket", what, addr)
			continue
		}
		if seen != "" && seen != sock {
			c.errorf(where, "--workload-api and SPIFFE_ENDPOINT_SOCKET name different sockets (%s, %s)", seen, sock)
		}
		seen = sock
		dir := path.Dir(sock)
		var mount *corev1.VolumeMount
		for i := range ct.VolumeMounts {
			if strings.TrimSuffix(ct.VolumeMounts[i].MountPath, "/") == dir {
				mount = &ct.VolumeMounts[i]
			}
		}
		if mount == nil {
			c.errorf(where, "%s=%s: no %s volume is mounted at %s, the socket's directory", what, addr, spiffeCSIDriver, dir)
			continue
		}
		vol := volumes[mount.Name]
		if vol == nil || vol.CSI == nil || vol.CSI.Driver != spiffeCSIDriver {
			c.errorf(where, "%s=%s: the volume %s mounted at %s is not a %s CSI volume", what, addr, mount.Name, dir, spiffeCSIDriver)
			continue
		}
		if !mount.ReadOnly || vol.CSI.ReadOnly == nil || !*vol.CSI.ReadOnly {
			c.errorf(where, "the %s volume %s must be read-only (mount and csi.readOnly)", spiffeCSIDriver, mount.Name)
		}
	}
}

// checkListen checks the listen address is reachable from the kubelet and
// Services and is a container port; it returns that port (0 if none).
func (c *checker) checkListen(where string, ct *corev1.Container, r role, p parsedContainer) int32 {
	addr, ok := p.flags["listen"]
	if !ok {
		addr = r.listenDefault
	}
	if addr == "" {
		return 0
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		c.errorf(where, "--listen=%s: %v", addr, err)
		return 0
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		c.errorf(where, "listens on %s (--listen; default %s): only the pod itself reaches it, not the kubelet's probes nor a Service; use 0.0.0.0:%s", addr, r.listenDefault, portStr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		c.errorf(where, "--listen=%s: port %q is not a number", addr, portStr)
		return 0
	}
	for _, cp := range ct.Ports {
		if int(cp.ContainerPort) == port {
			return cp.ContainerPort
		}
	}
	c.errorf(where, "--listen port %d is not among the container's ports", port)
	return int32(port)
}

// resolvePort turns a probe's or Service's port (number or name) into a
// container port number, or 0.
func resolvePort(ct *corev1.Container, p intstr.IntOrString) int32 {
	for _, cp := range ct.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	return 0
}

func (c *checker) checkProbes(where string, ct *corev1.Container, r role, p parsedContainer, listen int32) {
	probes := map[string]*corev1.Probe{"startupProbe": ct.StartupProbe, "livenessProbe": ct.LivenessProbe, "readinessProbe": ct.ReadinessProbe}
	for _, required := range []string{"livenessProbe", "readinessProbe"} {
		if probes[required] == nil {
			c.errorf(where, "no %s", required)
		}
	}
	for name, pr := range probes {
		if pr == nil {
			continue
		}
		switch {
		case pr.HTTPGet != nil:
			if r.tlsOnly {
				c.errorf(where, "%s: httpGet, but %s serves mutual TLS only and the kubelet has no client certificate; use tcpSocket", name, p.role)
				continue
			}
			port := resolvePort(ct, pr.HTTPGet.Port)
			if port == 0 {
				c.errorf(where, "%s: port %s is not a port of the container", name, pr.HTTPGet.Port.String())
			} else if port != listen {
				c.errorf(where, "%s: probe port %d, but the server listens on %d (--listen)", name, port, listen)
			}
			if !r.served[pr.HTTPGet.Path] {
				c.errorf(where, "%s: %s does not serve %s over plain HTTP", name, p.role, pr.HTTPGet.Path)
			}
			if pr.HTTPGet.Scheme == corev1.URISchemeHTTPS {
				c.errorf(where, "%s: scheme HTTPS, but health is served in plain HTTP (the kubelet has no SVID)", name)
			}
			if v, ok := p.flags["plain-http-reads"]; ok && v == "false" && usesIdentity(p) {
				c.errorf(where, "%s: plain-HTTP probe, but --plain-http-reads=false with TLS on: the probe cannot be answered", name)
			}
		case pr.TCPSocket != nil:
			if port := resolvePort(ct, pr.TCPSocket.Port); port == 0 {
				c.errorf(where, "%s: port %s is not a port of the container", name, pr.TCPSocket.Port.String())
			} else if port != listen {
				c.errorf(where, "%s: probe port %d, but the server listens on %d (--listen)", name, port, listen)
			}
		default:
			c.errorf(where, "%s: want httpGet or tcpSocket", name)
		}
	}
	if p.role == "ztlog serve" {
		if pr := ct.ReadinessProbe; pr != nil && (pr.HTTPGet == nil || pr.HTTPGet.Path != "/readyz") {
			c.errorf(where, "readinessProbe: want httpGet /readyz (storage, witnesses, identity)")
		}
		if pr := ct.LivenessProbe; pr != nil && (pr.HTTPGet == nil || pr.HTTPGet.Path != "/healthz") {
			c.errorf(where, "livenessProbe: want httpGet /healthz")
		}
	}
}

func usesIdentity(p parsedContainer) bool {
	if p.flags["identity"] == "none" {
		return false
	}
	return p.flags["workload-api"] != "" || p.flags["svid-cert"] != "" || p.flags["identity"] != ""
}

func (c *checker) checkPrometheus(where string, ann map[string]string, r role, listen int32) {
	scrape := ann["prometheus.io/scrape"] == "true"
	if !r.served["/metrics"] {
		if scrape {
			c.errorf(where, "prometheus.io/scrape is true, but it serves no /metrics")
		}
		return
	}
	if !scrape {
		c.errorf(where, "serves /metrics but the pod template has no prometheus.io/scrape: \"true\"")
		return
	}
	if got := ann["prometheus.io/port"]; got != strconv.Itoa(int(listen)) {
		c.errorf(where, "prometheus.io/port %q, but /metrics is on port %d (--listen)", got, listen)
	}
	if got := ann["prometheus.io/path"]; got != "/metrics" {
		c.errorf(where, "prometheus.io/path %q, want /metrics", got)
	}
	if got := ann["prometheus.io/scheme"]; got != "" && got != "http" {
		c.errorf(where, "prometheus.io/scheme %q: /metrics is served in plain HTTP", got)
	}
}

// selected are the workloads in ns whose pod labels sel matches.
func selected(ws []workload, ns string, sel *metav1.LabelSelector) ([]workload, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, err
	}
	var out []workload
	for _, w := range ws {
		if w.ns == ns && s.Matches(labels.Set(w.tmpl.Labels)) {
			out = append(out, w)
		}
	}
	return out, nil
}

// portIn says whether p (number or name) is a container port of one of ws.
func portIn(ws []workload, p intstr.IntOrString) bool {
	for _, w := range ws {
		for i := range w.tmpl.Spec.Containers {
			if resolvePort(&w.tmpl.Spec.Containers[i], p) != 0 {
				return true
			}
		}
	}
	return false
}

// checkServiceAccounts checks each pod's service account is in the set:
// the pod is refused without it, and the ClusterSPIFFEID templates build
// the SPIFFE ID from its name.
func (c *checker) checkServiceAccounts(objs []object, ws []workload) {
	have := map[string]bool{}
	for _, o := range objs {
		if _, ok := o.value.(*corev1.ServiceAccount); ok {
			have[o.ns+"/"+o.name] = true
		}
	}
	for _, w := range ws {
		sa := w.tmpl.Spec.ServiceAccountName
		if sa == "" {
			c.errorf(w.obj.String(), "no serviceAccountName: the pod would run as \"default\", shared with everything else in %s, and its SPIFFE ID would say so", w.ns)
			continue
		}
		if !have[w.ns+"/"+sa] {
			c.errorf(w.obj.String(), "serviceAccountName %s: no such ServiceAccount in %s", sa, w.ns)
		}
	}
}

func (c *checker) checkServices(objs []object, ws []workload) {
	for _, o := range objs {
		svc, ok := o.value.(*corev1.Service)
		if !ok {
			continue
		}
		sel, err := selected(ws, o.ns, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
		if err != nil || len(sel) == 0 {
			c.errorf(o.String(), "selector %v selects no workload's pods", svc.Spec.Selector)
			continue
		}
		for _, p := range svc.Spec.Ports {
			tp := p.TargetPort
			if tp.Type == intstr.Int && tp.IntVal == 0 {
				tp = intstr.FromInt32(p.Port)
			}
			if !portIn(sel, tp) {
				c.errorf(o.String(), "port %s: targetPort %s is not a container port of the selected pods", p.Name, tp.String())
			}
		}
	}
}

func (c *checker) checkPDBs(objs []object, ws []workload) {
	for _, o := range objs {
		pdb, ok := o.value.(*policyv1.PodDisruptionBudget)
		if !ok {
			continue
		}
		if sel, err := selected(ws, o.ns, pdb.Spec.Selector); err != nil || len(sel) == 0 {
			c.errorf(o.String(), "selector selects no workload's pods")
		}
	}
}

func (c *checker) checkNetworkPolicies(objs []object, ws []workload) {
	for _, o := range objs {
		np, ok := o.value.(*networkingv1.NetworkPolicy)
		if !ok {
			continue
		}
		sel, err := selected(ws, o.ns, &np.Spec.PodSelector)
		if err != nil || len(sel) == 0 {
			c.errorf(o.String(), "podSelector selects no workload's pods")
			continue
		}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				if p.Port != nil && !portIn(sel, *p.Port) {
					c.errorf(o.String(), "ingress port %s is not a container port of the selected pods", p.Port.String())
				}
			}
			for _, peer := range rule.From {
				if peer.PodSelector != nil && peer.NamespaceSelector == nil {
					if from, err := selected(ws, o.ns, peer.PodSelector); err != nil || len(from) == 0 {
						c.errorf(o.String(), "ingress from podSelector %v selects no workload's pods", peer.PodSelector.MatchLabels)
					}
				}
			}
		}
	}
}

// checkSPIFFEIDs renders the ClusterSPIFFEIDs for the pods they select and
// checks that every pod on the Workload API gets an ID, and that the IDs
// flags name (--default-broker, --server-id) are the ones the broker and
// the server get. Without ClusterSPIFFEIDs in objs it checks nothing.
func (c *checker) checkSPIFFEIDs(objs []object, ws []workload, parsed map[*corev1.Container]parsedContainer) {
	var cids []object
	nsLabels := map[string]map[string]string{}
	for _, o := range objs {
		switch v := o.value.(type) {
		case *ClusterSPIFFEID:
			cids = append(cids, o)
		case *corev1.Namespace:
			nsLabels[v.Name] = v.Labels
		}
	}
	if len(cids) == 0 {
		return
	}
	idOf := map[string][]string{} // role -> IDs of the pods running it
	for _, w := range ws {
		nl := merge(nsLabels[w.ns], map[string]string{"kubernetes.io/metadata.name": w.ns})
		var got []string
		for _, o := range cids {
			cid := o.value.(*ClusterSPIFFEID)
			if !selectorMatches(cid.Spec.NamespaceSelector, nl) || !selectorMatches(cid.Spec.PodSelector, w.tmpl.Labels) {
				continue
			}
			id, err := renderSPIFFEID(cid.Spec.SPIFFEIDTemplate, w)
			if err != nil {
				c.errorf(o.String(), "spiffeIDTemplate: %v", err)
				continue
			}
			got = append(got, id)
		}
		for i := range w.tmpl.Spec.Containers {
			p := parsed[&w.tmpl.Spec.Containers[i]]
			if p.flags["workload-api"] == "" {
				continue
			}
			switch len(got) {
			case 0:
				c.errorf(w.obj.String(), "uses the Workload API, but no ClusterSPIFFEID selects its pods: SPIRE would issue it no SVID")
			case 1:
				idOf[p.role] = append(idOf[p.role], got[0])
			default:
				c.errorf(w.obj.String(), "selected by %d ClusterSPIFFEIDs (%q): which SVID it gets is not defined", len(got), got)
			}
		}
	}
	for _, w := range ws {
		for i := range w.tmpl.Spec.Containers {
			p := parsed[&w.tmpl.Spec.Containers[i]]
			want := map[string]string{}
			switch p.role {
			case "ztlog serve":
				want["default-broker"] = "zt broker"
			case "zt broker":
				want["server-id"] = "ztlog serve"
			}
			for flag, target := range want {
				v, ok := p.flags[flag]
				if !ok || len(idOf[target]) == 0 {
					continue
				}
				if !slices.Contains(idOf[target], v) {
					c.errorf(w.obj.String(), "--%s=%s, but the ClusterSPIFFEIDs give `%s` %q", flag, v, target, idOf[target])
				}
			}
		}
	}
}

func selectorMatches(sel *metav1.LabelSelector, l map[string]string) bool {
	if sel == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(l))
}

// renderSPIFFEID renders a ClusterSPIFFEID template the way
// spire-controller-manager does, with the pod's metadata and spec.
func renderSPIFFEID(tmpl string, w workload) (string, error) {
	t, err := template.New("spiffeID").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", err
	}
	meta := w.tmpl.ObjectMeta
	meta.Namespace = w.ns
	meta.Name = w.obj.name + "-0"
	var b bytes.Buffer
	err = t.Execute(&b, map[string]any{
		"TrustDomain": trustDomain, "ClusterName": "cluster", "ClusterDomain": "cluster.local",
		"PodMeta": meta, "PodSpec": w.tmpl.Spec, "NodeMeta": metav1.ObjectMeta{Name: "node"}, "NodeSpec": corev1.NodeSpec{},
	})
	return b.String(), err
}

// overlays are the kustomizations an operator applies.
var overlays = []string{"kubernetes/posix", "kubernetes/aws"}

// TestManifestsDecodeStrictly decodes every YAML file under kubernetes/
// against the k8s.io/api types (and the ClusterSPIFFEID and Kustomization
// mirrors), unknown fields refused.
func TestManifestsDecodeStrictly(t *testing.T) {
	files, err := yamlFiles("kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found %d manifest files under kubernetes/, want the base, overlays and spire", len(files))
	}
	for _, f := range files {
		objs, err := decodeFile(f)
		if err != nil {
			t.Error(err)
			continue
		}
		if len(objs) == 0 {
			t.Errorf("%s: no objects", f)
		}
	}
}

// TestManifestWiring renders each overlay (with the SPIRE registrations)
// and checks the wiring against the real binaries' flags.
func TestManifestWiring(t *testing.T) {
	flags := binaryFlags(t)
	spire, err := render("kubernetes/spire")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range overlays {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			objs, err := render(dir)
			if err != nil {
				t.Fatal(err)
			}
			roleSeen := map[string]bool{}
			for _, w := range workloads(objs) {
				for _, ct := range w.tmpl.Spec.Containers {
					if len(ct.Command) == 1 && len(ct.Args) > 0 {
						roleSeen[path.Base(ct.Command[0])+" "+ct.Args[0]] = true
					}
				}
			}
			for _, want := range []string{"ztlog serve", "zt-witness serve", "zt broker"} {
				if !roleSeen[want] {
					t.Errorf("%s runs no `%s`", dir, want)
				}
			}
			for _, e := range check(append(objs, spire...), flags) {
				t.Error(e)
			}
		})
	}
}

// TestKustomizeRendersTheSame renders each kustomization with kubectl's
// kustomize, where kubectl is installed, and checks that it decodes
// strictly and yields the same objects as render().
func TestKustomizeRendersTheSame(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed: kustomize rendering not compared (render() is checked by TestManifestWiring)")
	}
	for _, dir := range append(slices.Clone(overlays), "kubernetes/spire") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			out, err := exec.Command(kubectl, "kustomize", dir).Output()
			if err != nil {
				t.Fatalf("kubectl kustomize %s: %v", dir, err)
			}
			got, err := decodeStrict("kubectl kustomize "+dir, out)
			if err != nil {
				t.Fatal(err)
			}
			mine, err := render(dir)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := ids(got), ids(mine); !slices.Equal(a, b) {
				t.Errorf("kustomize renders %q\nrender() gives %q", a, b)
			}
		})
	}
}

// TestManifestChecksCatch runs the checks on deliberately broken manifests
// (testdata/broken): each must fail with the error its first line names
// ("# want: ...").
func TestManifestChecksCatch(t *testing.T) {
	flags := binaryFlags(t)
	files, err := filepath.Glob("testdata/broken/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/broken/*.yaml")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok || want == "" {
				t.Fatalf("%s: first line must be `# want: <error text>`", f)
			}
			var errs []string
			objs, err := decodeStrict(f, data)
			if err != nil {
				errs = []string{err.Error()}
			} else {
				errs = check(objs, flags)
			}
			for _, e := range errs {
				if strings.Contains(e, want) {
					if len(errs) > 1 {
						t.Logf("also (the case should break one thing): %q", errs)
					}
					return
				}
			}
			t.Errorf("no error contains %q; got %d:\n%s", want, len(errs), strings.Join(errs, "\n"))
		})
	}
}
