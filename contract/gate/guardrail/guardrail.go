// Package guardrail inspects the argument values an agent sends with a
// decision request and reports findings — the type of sensitive data, where
// it is (argument path, byte offset, byte length) and which rule matched —
// never the value itself. Argument values are not stored anywhere; only
// their digest is logged.
//
// Detectors:
//
//   - cloud access keys, private key blocks, JWTs and service tokens: the
//     gitleaks default rule set (maintained upstream; keyword prefilter,
//     regular expression, entropy threshold and allowlists per rule);
//   - email addresses;
//   - payment card numbers: 13 to 19 digits (spaces or dashes allowed)
//     that pass the Luhn check;
//   - high-entropy secrets: runs of at least 24 base64/hex-like
//     characters whose Shannon entropy exceeds 4.5 bits per character.
//
// Overlapping findings keep the most specific type.
package guardrail

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"

	"github.com/zt-infra/ztlog/contract/entry"
)

// Finding types.
const (
	Email             = "email"
	PaymentCard       = "payment_card"
	CloudAccessKey    = "cloud_access_key"
	PrivateKey        = "private_key"
	JWT               = "jwt"
	Secret            = "secret"
	HighEntropySecret = "high_entropy_secret"
)

// MaxFindings is the most findings reported for one request.
const MaxFindings = 32

// Finding is one detector hit: type, rule, argument path, byte offset and
// length within that argument's string value.
type Finding = entry.Finding

// Scanner holds the compiled detectors. Safe for concurrent use.
type Scanner struct {
	rules []config.Rule
}

// New compiles the detectors (the gitleaks default rules and our own).
func New() (*Scanner, error) {
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(config.DefaultConfig)); err != nil {
		return nil, fmt.Errorf("guardrail: gitleaks rules: %w", err)
	}
	var vc config.ViperConfig
	if err := v.Unmarshal(&vc); err != nil {
		return nil, fmt.Errorf("guardrail: gitleaks rules: %w", err)
	}
	cfg, err := vc.Translate()
	if err != nil {
		return nil, fmt.Errorf("guardrail: gitleaks rules: %w", err)
	}
	s := &Scanner{}
	ids := make([]string, 0, len(cfg.Rules))
	for id := range cfg.Rules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r := cfg.Rules[id]
		if r.Regex == nil || len(r.RequiredRules) > 0 || r.SkipReport {
			continue // path-only and composite rules do not apply to values
		}
		s.rules = append(s.rules, r)
	}
	return s, nil
}

// Rules is the number of gitleaks rules in use.
func (s *Scanner) Rules() int { return len(s.rules) }

// ScanJSON scans every string in the JSON value args (an object of
// arguments); paths are dotted member names with [i] for array elements.
func (s *Scanner) ScanJSON(args []byte) ([]Finding, error) {
	dec := json.NewDecoder(strings.NewReader(string(args)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var out []Finding
	var walk func(path string, v any, depth int)
	walk = func(path string, v any, depth int) {
		switch x := v.(type) {
		case string:
			out = append(out, s.Scan(path, x)...)
			// A JSON document sent as a string is read as JSON too: its
			// escapes (\u0040) would otherwise hide what it holds.
			if depth < maxNested {
				if inner, ok := nestedJSON(x); ok {
					walk(path+"(json)", inner, depth+1)
				}
			}
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				p := k
				if path != "" {
					p = path + "." + k
				}
				// Member names carry data too ({"bob@example.com": true}).
				out = append(out, s.Scan(p+"(name)", k)...)
				walk(p, x[k], depth)
			}
		case []any:
			for i, e := range x {
				walk(path+"["+strconv.Itoa(i)+"]", e, depth)
			}
		case json.Number:
			out = append(out, s.Scan(path, x.String())...) // card numbers sent as numbers
			if digits, ok := integerDigits(x); ok && digits != x.String() {
				out = append(out, s.Scan(path, digits)...) // and in exponent form
			}
		}
	}
	walk("", v, 0)
	if len(out) > MaxFindings {
		out = out[:MaxFindings]
	}
	return out, nil
}

// maxNested bounds how deep JSON documents sent as strings are read.
const maxNested = 4

// nestedJSON decodes s when it is a JSON object or array.
func nestedJSON(s string) (any, bool) {
	t := strings.TrimSpace(s)
	if len(t) < 2 || (t[0] != '{' && t[0] != '[') {
		return nil, false
	}
	dec := json.NewDecoder(strings.NewReader(t))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || dec.More() {
		return nil, false
	}
	return v, true
}

// integerDigits writes an integral number given with a fraction or an
// exponent (4.111111111111111e15) in plain digits, up to 32 of them.
func integerDigits(n json.Number) (string, bool) {
	if !strings.ContainsAny(string(n), ".eE") {
		return "", false
	}
	f, _, err := big.ParseFloat(string(n), 10, 256, big.ToNearestEven)
	if err != nil || !f.IsInt() || f.MantExp(nil) > 107 { // 2^107 > 10^32
		return "", false
	}
	i, _ := f.Int(nil)
	return i.String(), true
}

var (
	emailRe   = regexp.MustCompile(`[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z]{2,24}`)
	cardRe    = regexp.MustCompile(`\d(?:[ \-]?\d){12,18}`)
	entropyRe = regexp.MustCompile(`[A-Za-z0-9+/=_\-]{24,}`)
)

// specificity orders types when findings overlap (higher wins).
var specificity = map[string]int{PrivateKey: 6, JWT: 5, CloudAccessKey: 5, PaymentCard: 4, Email: 3, Secret: 2, HighEntropySecret: 1}

// Scan scans one string value at argument path arg.
func (s *Scanner) Scan(arg, value string) []Finding {
	var found []Finding
	add := func(typ, rule string, start, end int) {
		found = append(found, Finding{Type: typ, Rule: rule, Arg: arg, Offset: start, Length: end - start})
	}
	lower := strings.ToLower(value)
	for _, r := range s.rules {
		if len(r.Keywords) > 0 && !containsAny(lower, r.Keywords) {
			continue
		}
		for _, m := range r.Regex.FindAllStringSubmatchIndex(value, -1) {
			start, end := m[0], m[1]
			secret := value[start:end]
			if g := r.SecretGroup; g > 0 && 2*g+1 < len(m) && m[2*g] >= 0 {
				secret = value[m[2*g]:m[2*g+1]]
			} else if g == 0 {
				// gitleaks: the first non-empty group is the secret.
				for i := 1; 2*i+1 < len(m); i++ {
					if m[2*i] >= 0 && m[2*i+1] > m[2*i] {
						secret = value[m[2*i]:m[2*i+1]]
						break
					}
				}
			}
			if r.Entropy > 0 && shannon(secret) <= r.Entropy {
				continue
			}
			if allowed(r, secret) {
				continue
			}
			add(ruleType(r.RuleID), "gitleaks:"+r.RuleID, start, end)
		}
	}
	for _, m := range emailRe.FindAllStringIndex(value, -1) {
		add(Email, "email", m[0], m[1])
	}
	for _, m := range cardRe.FindAllStringIndex(value, -1) {
		digits := strings.NewReplacer(" ", "", "-", "").Replace(value[m[0]:m[1]])
		if len(digits) >= 13 && len(digits) <= 19 && luhn(digits) {
			add(PaymentCard, "luhn", m[0], m[1])
		}
	}
	for _, m := range entropyRe.FindAllStringIndex(value, -1) {
		if shannon(value[m[0]:m[1]]) > 4.5 {
			add(HighEntropySecret, "entropy", m[0], m[1])
		}
	}
	return resolveOverlaps(found)
}

func containsAny(lower string, keywords []string) bool {
	for _, k := range keywords {
		if strings.Contains(lower, strings.ToLower(k)) {
			return true
		}
	}
	return false
}

func allowed(r config.Rule, secret string) bool {
	for _, a := range r.Allowlists {
		if a.RegexAllowed(secret) {
			return true
		}
		if ok, _ := a.ContainsStopWord(secret); ok {
			return true
		}
	}
	return false
}

// ruleType maps a gitleaks rule id onto a finding type.
func ruleType(id string) string {
	switch {
	case id == "private-key" || strings.HasSuffix(id, "-private-key"):
		return PrivateKey
	case id == "jwt" || id == "jwt-base64":
		return JWT
	}
	for _, p := range []string{"aws-", "gcp-", "google-", "azure-", "alibaba-", "digitalocean-", "yandex-", "ibm-", "oci-", "tencent-", "linode-", "heroku-", "cloudflare-"} {
		if strings.HasPrefix(id, p) {
			return CloudAccessKey
		}
	}
	return Secret
}

// resolveOverlaps keeps, of overlapping findings, the most specific one
// (then the longest), and sorts them by offset.
func resolveOverlaps(fs []Finding) []Finding {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if specificity[a.Type] != specificity[b.Type] {
			return specificity[a.Type] > specificity[b.Type]
		}
		return a.Length > b.Length
	})
	var kept []Finding
	for _, f := range fs {
		overlaps := false
		for _, k := range kept {
			if f.Offset < k.Offset+k.Length && k.Offset < f.Offset+f.Length {
				overlaps = true
				break
			}
		}
		if !overlaps {
			kept = append(kept, f)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].Offset < kept[j].Offset })
	return kept
}

// luhn reports whether the digit string passes the Luhn check.
func luhn(digits string) bool {
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// shannon is the Shannon entropy of s in bits per byte.
func shannon(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	var h float64
	n := float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}
