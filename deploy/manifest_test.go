package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// This file decodes manifests strictly; kubernetes_test.go checks them.

// object is one decoded manifest document.
type object struct {
	source string // file (and document number) it came from
	kind   string // apiVersion/kind
	name   string
	ns     string
	value  any // pointer to the typed object
}

func (o object) String() string {
	if o.ns != "" {
		return fmt.Sprintf("%s %s/%s (%s)", o.kind, o.ns, o.name, o.source)
	}
	return fmt.Sprintf("%s %s (%s)", o.kind, o.name, o.source)
}

// ClusterSPIFFEID mirrors spire-controller-manager's
// spire.spiffe.io/v1alpha1 ClusterSPIFFEID (api/v1alpha1/
// clusterspiffeid_types.go), field for field, so that strict decoding
// refuses a field that CRD does not have. Its Go module is not imported: it
// brings controller-runtime and the SPIRE API with it.
type ClusterSPIFFEID struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ClusterSPIFFEIDSpec `json:"spec"`
	Status            struct {
		Stats struct {
			NamespacesSelected     int `json:"namespacesSelected"`
			NamespacesIgnored      int `json:"namespacesIgnored"`
			PodsSelected           int `json:"podsSelected"`
			PodEntryRenderFailures int `json:"podEntryRenderFailures"`
			EntriesMasked          int `json:"entriesMasked"`
			EntriesToSet           int `json:"entriesToSet"`
			EntryFailures          int `json:"entryFailures"`
		} `json:"stats"`
	} `json:"status"`
}

// ClusterSPIFFEIDSpec mirrors the CRD's spec.
type ClusterSPIFFEIDSpec struct {
	SPIFFEIDTemplate          string                `json:"spiffeIDTemplate"`
	TTL                       metav1.Duration       `json:"ttl"`
	JWTTTL                    metav1.Duration       `json:"jwtTtl"`
	DNSNameTemplates          []string              `json:"dnsNameTemplates,omitempty"`
	WorkloadSelectorTemplates []string              `json:"workloadSelectorTemplates,omitempty"`
	FederatesWith             []string              `json:"federatesWith,omitempty"`
	NamespaceSelector         *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	PodSelector               *metav1.LabelSelector `json:"podSelector,omitempty"`
	Admin                     bool                  `json:"admin,omitempty"`
	Downstream                bool                  `json:"downstream,omitempty"`
	AutoPopulateDNSNames      bool                  `json:"autoPopulateDNSNames,omitempty"`
	ClassName                 string                `json:"className,omitempty"`
	Fallback                  bool                  `json:"fallback,omitempty"`
	Hint                      string                `json:"hint,omitempty"`
}

// Kustomization is the part of kustomize's Kustomization these manifests
// use. A field outside it fails strict decoding: render() below
// implements exactly these, so a kustomization using more must extend both.
type Kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources,omitempty"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors"`
	} `json:"labels,omitempty"`
}

// newTyped returns a new typed value for apiVersion/kind, or nil.
func newTyped(kind string) any {
	switch kind {
	case "v1/Namespace":
		return &corev1.Namespace{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "spire.spiffe.io/v1alpha1/ClusterSPIFFEID":
		return &ClusterSPIFFEID{}
	case "kustomize.config.k8s.io/v1beta1/Kustomization":
		return &Kustomization{}
	}
	return nil
}

// clusterScoped are the kinds without a namespace.
var clusterScoped = map[string]bool{
	"v1/Namespace": true, "spire.spiffe.io/v1alpha1/ClusterSPIFFEID": true,
	"kustomize.config.k8s.io/v1beta1/Kustomization": true,
}

// decodeStrict decodes every YAML document in data into its k8s.io/api
// type, refusing unknown and duplicate fields and kinds it does not know.
func decodeStrict(source string, data []byte) ([]object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []object
	for n := 1; ; n++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %v", source, n, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		src := fmt.Sprintf("%s#%d", source, n)
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("%s: %v", src, err)
		}
		kind := tm.APIVersion + "/" + tm.Kind
		v := newTyped(kind)
		if v == nil {
			return nil, fmt.Errorf("%s: kind %s is not one these checks know (add it to newTyped)", src, kind)
		}
		if err := unmarshalStrict(doc, v); err != nil {
			return nil, fmt.Errorf("%s: %s: strict decoding: %v", src, kind, err)
		}
		o := object{source: src, kind: kind, value: v}
		if m, ok := v.(metav1.Object); ok {
			o.name, o.ns = m.GetName(), m.GetNamespace()
		}
		out = append(out, o)
	}
}

// unmarshalStrict decodes one YAML document the way the API server's
// strict field validation does: duplicate keys, unknown fields and fields
// whose name differs only in case are errors. (encoding/json, which
// sigs.k8s.io/yaml.UnmarshalStrict uses, matches names case-insensitively:
// "livenessprobe" would pass.)
func unmarshalStrict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := sigsjson.UnmarshalStrict(j, v)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		return errors.Join(strictErrs...)
	}
	return nil
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// decodeFile reads and strictly decodes one file.
func decodeFile(path string) ([]object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decodeStrict(path, data)
}

// render builds the objects of the kustomization in dir the way kustomize
// does for the fields Kustomization has: resources (files and directories,
// in order), namespace on namespaced objects, labels on metadata and pod
// templates (and selectors with includeSelectors).
func render(dir string) ([]object, error) {
	objs, err := decodeFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, fmt.Errorf("%s/kustomization.yaml: want one Kustomization, got %d documents", dir, len(objs))
	}
	k, ok := objs[0].value.(*Kustomization)
	if !ok {
		return nil, fmt.Errorf("%s/kustomization.yaml: not a Kustomization: %s", dir, objs[0].kind)
	}
	var out []object
	for _, res := range k.Resources {
		p := filepath.Join(dir, res)
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%s: resource %s: %v", dir, res, err)
		}
		var got []object
		if fi.IsDir() {
			got, err = render(p)
		} else {
			got, err = decodeFile(p)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	for i := range out {
		o := &out[i]
		m, ok := o.value.(metav1.Object)
		if !ok {
			continue
		}
		if k.Namespace != "" && !clusterScoped[o.kind] {
			m.SetNamespace(k.Namespace)
			o.ns = k.Namespace
		}
		for _, l := range k.Labels {
			m.SetLabels(merge(m.GetLabels(), l.Pairs))
			if l.IncludeSelectors {
				return nil, fmt.Errorf("%s: labels.includeSelectors is not implemented by these checks", dir)
			}
		}
	}
	return out, nil
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// ids are the kind/namespace/name of objs, sorted.
func ids(objs []object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.kind+" "+o.ns+"/"+o.name)
	}
	sort.Strings(out)
	return out
}

// yamlFiles lists the .yaml files under dir.
func yamlFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}
