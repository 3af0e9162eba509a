// Package config reads the zt-witness configuration file: the logs the
// witness cosigns and cross-checks, its peer witnesses, and the settings of
// `zt-witness federate`. The file is JSON:
//
//	{
//	  "logs": [
//	    {
//	      "origin": "example.com/ztlog",
//	      "verifier_key": "example.com/ztlog+1a2b3c4d+AU...",
//	      "url": "https://example.com/log/",
//	      "witness": true,
//	      "federation": {
//	        "trust_domain": "example.com",
//	        "bundle_endpoint": "https://example.com/bundle",
//	        "bundle_endpoint_ca": "/etc/zt-witness/example-roots.pem",
//	        "server_spiffe_id": "spiffe://example.com/ztlog"
//	      }
//	    }
//	  ],
//	  "peers": [
//	    {"name": "witness.partner.example/w1", "verifier_key": "witness.partner.example/w1+...", "url": "https://witness.partner.example/"}
//	  ],
//	  "federate": {"witness_url": "http://127.0.0.1:7380/", "witness_key": "witness.example/w1+...", "interval": "30s"}
//	}
//
// logs: every log the witness knows. origin is the checkpoint origin line;
// verifier_key the log's Ed25519 signed-note verifier key, whose name must be
// the origin; url the log's C2SP tlog-tiles prefix (needed by federate);
// witness (default true) whether `zt-witness serve` cosigns it — false makes
// it a log that federate only cross-checks. federation, optional, is the
// SPIFFE federation of the log's trust domain: federate fetches the trust
// bundle from bundle_endpoint (SPIFFE bundle endpoint, https_web profile,
// with roots from bundle_endpoint_ca or the system's; or https_spiffe when
// bundle_endpoint_spiffe_id and bootstrap_bundle, a PEM file of the trust
// domain's X.509 authorities, are given) and only accepts the log's TLS
// server certificate if it is an X.509-SVID of that trust domain
// (server_spiffe_id, when set, must match exactly).
//
// peers: other witnesses whose latest cosigned checkpoints federate reads
// (GET <url>/<origin hash>/checkpoint) and checks against its own view.
//
// federate: witness_url is this witness's submission and monitoring prefix
// (where federate submits partner checkpoints and reads back what was
// cosigned), witness_key its cosigner verifier key, interval how often each
// log is checked (default 30s).
//
// Unknown members are errors, and so is anything that does not parse; the
// message names the member. A running zt-witness re-reads the file when it
// changes (and on SIGHUP) and keeps the previous configuration if the new
// one is invalid.
package config

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"golang.org/x/mod/sumdb/note"

	"github.com/zt-infra/ztlog/internal/jsonx"
	"github.com/zt-infra/ztlog/witness/cosigner"
)

// MaxSize bounds a configuration file.
const MaxSize = 4 << 20

// DefaultInterval is how often federate checks each log.
const DefaultInterval = 30 * time.Second

// Config is a parsed configuration file.
type Config struct {
	Logs     []*Log    `json:"logs"`
	Peers    []*Peer   `json:"peers,omitempty"`
	Federate *Federate `json:"federate,omitempty"`

	byOrigin map[string]*Log
}

// Log is a log the witness knows.
type Log struct {
	Origin      string      `json:"origin"`
	VerifierKey string      `json:"verifier_key"`
	URL         string      `json:"url,omitempty"`
	Witness     *bool       `json:"witness,omitempty"`
	Federation  *Federation `json:"federation,omitempty"`

	verifier note.Verifier
}

// Federation is how federate reaches a log in another SPIFFE trust domain.
type Federation struct {
	TrustDomain            string `json:"trust_domain"`
	BundleEndpoint         string `json:"bundle_endpoint"`
	BundleEndpointCA       string `json:"bundle_endpoint_ca,omitempty"`
	BundleEndpointSPIFFEID string `json:"bundle_endpoint_spiffe_id,omitempty"`
	BootstrapBundle        string `json:"bootstrap_bundle,omitempty"`
	ServerSPIFFEID         string `json:"server_spiffe_id,omitempty"`
}

// Peer is another witness.
type Peer struct {
	Name        string `json:"name"`
	VerifierKey string `json:"verifier_key"`
	URL         string `json:"url"`

	verifier note.Verifier
}

// Federate holds the settings of `zt-witness federate`.
type Federate struct {
	WitnessURL string   `json:"witness_url"`
	WitnessKey string   `json:"witness_key"`
	Interval   Duration `json:"interval,omitempty"`

	verifier note.Verifier
}

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration time.Duration

// UnmarshalJSON reads "30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"30s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("%q is not a positive duration such as \"30s\"", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes "30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Witnessed reports whether `zt-witness serve` cosigns the log.
func (l *Log) Witnessed() bool { return l.Witness == nil || *l.Witness }

// Verifier is the log's checkpoint verifier.
func (l *Log) Verifier() note.Verifier { return l.verifier }

// Verifier is the peer's cosignature verifier.
func (p *Peer) Verifier() note.Verifier { return p.verifier }

// Verifier is this witness's own cosignature verifier.
func (f *Federate) Verifier() note.Verifier { return f.verifier }

// Log returns the log with the given origin, if configured.
func (c *Config) Log(origin string) (*Log, bool) {
	l, ok := c.byOrigin[origin]
	return l, ok
}

// Parse reads and validates a configuration. name is used in messages.
func Parse(name string, raw []byte) (*Config, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("config %s: %s", name, fmt.Sprintf(format, args...))
	}
	if len(raw) > MaxSize {
		return nil, fail("%d bytes, more than %d", len(raw), MaxSize)
	}
	var c Config
	if err := jsonx.DecodeStrict(raw, &c); err != nil {
		return nil, fail("%v", err)
	}
	c.byOrigin = map[string]*Log{}
	for i, l := range c.Logs {
		if l == nil {
			return nil, fail("logs[%d] is null", i)
		}
		at := fmt.Sprintf("logs[%d]", i)
		if l.Origin == "" || strings.ContainsAny(l.Origin, "\n") {
			return nil, fail("%s.origin must be a non-empty single line (the checkpoint's origin)", at)
		}
		if _, dup := c.byOrigin[l.Origin]; dup {
			return nil, fail("%s.origin %q is listed twice", at, l.Origin)
		}
		v, err := note.NewVerifier(l.VerifierKey)
		if err != nil {
			return nil, fail("%s.verifier_key: %v (want the log's Ed25519 note verifier key, <origin>+<id>+<base64>)", at, err)
		}
		if v.Name() != l.Origin {
			return nil, fail("%s.verifier_key is named %q but the origin is %q; a log's key name is its origin", at, v.Name(), l.Origin)
		}
		l.verifier = v
		if l.URL != "" {
			if err := checkURL(l.URL); err != nil {
				return nil, fail("%s.url: %v", at, err)
			}
		}
		if f := l.Federation; f != nil {
			if err := f.check(); err != nil {
				return nil, fail("%s.federation.%v", at, err)
			}
			if !strings.HasPrefix(l.URL, "https://") {
				return nil, fail("%s.federation needs an https:// url (the log's server certificate is checked against the trust domain)", at)
			}
		}
		c.byOrigin[l.Origin] = l
	}
	names := map[string]bool{}
	for i, p := range c.Peers {
		if p == nil {
			return nil, fail("peers[%d] is null", i)
		}
		at := fmt.Sprintf("peers[%d]", i)
		if p.Name == "" || names[p.Name] {
			return nil, fail("%s.name must be non-empty and unique", at)
		}
		names[p.Name] = true
		v, err := cosigner.NewVerifier(p.VerifierKey)
		if err != nil {
			return nil, fail("%s.verifier_key: %v", at, err)
		}
		p.verifier = v
		if err := checkURL(p.URL); err != nil {
			return nil, fail("%s.url: %v", at, err)
		}
	}
	if f := c.Federate; f != nil {
		if err := checkURL(f.WitnessURL); err != nil {
			return nil, fail("federate.witness_url: %v", err)
		}
		v, err := cosigner.NewVerifier(f.WitnessKey)
		if err != nil {
			return nil, fail("federate.witness_key: %v", err)
		}
		f.verifier = v
		if f.Interval == 0 {
			f.Interval = Duration(DefaultInterval)
		}
	}
	return &c, nil
}

func (f *Federation) check() error {
	td, err := spiffeid.TrustDomainFromString(f.TrustDomain)
	if err != nil {
		return fmt.Errorf("trust_domain %q: %w", f.TrustDomain, err)
	}
	if !strings.HasPrefix(f.BundleEndpoint, "https://") {
		return fmt.Errorf("bundle_endpoint %q must be an https:// URL (SPIFFE bundle endpoint)", f.BundleEndpoint)
	}
	if err := checkURL(f.BundleEndpoint); err != nil {
		return fmt.Errorf("bundle_endpoint: %w", err)
	}
	if (f.BundleEndpointSPIFFEID == "") != (f.BootstrapBundle == "") {
		return fmt.Errorf("bundle_endpoint_spiffe_id and bootstrap_bundle go together (https_spiffe profile); give both or neither")
	}
	if f.BundleEndpointSPIFFEID != "" {
		if _, err := spiffeid.FromString(f.BundleEndpointSPIFFEID); err != nil {
			return fmt.Errorf("bundle_endpoint_spiffe_id: %w", err)
		}
		if f.BundleEndpointCA != "" {
			return fmt.Errorf("bundle_endpoint_ca is for the https_web profile; it cannot be combined with bundle_endpoint_spiffe_id")
		}
	}
	if f.ServerSPIFFEID != "" {
		id, err := spiffeid.FromString(f.ServerSPIFFEID)
		if err != nil {
			return fmt.Errorf("server_spiffe_id: %w", err)
		}
		if id.TrustDomain() != td {
			return fmt.Errorf("server_spiffe_id %s is not in trust_domain %s", id, td)
		}
	}
	return nil
}

func checkURL(s string) error {
	if s == "" {
		return fmt.Errorf("missing")
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	return nil
}

// Load reads and parses a configuration file.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, raw)
}
