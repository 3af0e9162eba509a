// Package audittest makes evidence logs for the audit's tests and
// benchmarks: a Scenario generates a realistic stream of contract entries
// (agents registered, allows and denies, results linked to their allows),
// and WriteLog writes any entry stream directly as a POSIX C2SP
// tlog-tiles log — entry bundles, hash tiles (full and final partial) and
// a signed checkpoint — at hundreds of thousands of entries per second,
// which is how the million-entry benchmarks get their logs. Its output is
// byte-identical to Tessera's POSIX driver for the same entries (tested).
package audittest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/mod/sumdb/note"

	"github.com/zt-infra/ztlog/contract/entry"
)

// Checkpoint is what WriteLog wrote.
type Checkpoint struct {
	Size uint64
	Root []byte
	// Note is the signed checkpoint.
	Note []byte
}

// WriteLog writes the entries as a tlog-tiles log under dir (which must
// not hold a log yet) and signs its checkpoint with signer, whose name is
// the origin. It keeps one bundle and one tile per level in memory.
func WriteLog(dir string, signer note.Signer, entries iter.Seq[[]byte]) (*Checkpoint, error) {
	w := &writer{dir: dir}
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	rng := rf.NewEmptyRange(0)
	var bundle bytes.Buffer
	inBundle := 0
	for e := range entries {
		if len(e) == 0 || len(e) > entry.MaxEntrySize {
			return nil, fmt.Errorf("entry %d: %d bytes", rng.End(), len(e))
		}
		bundle.Write(binary.BigEndian.AppendUint16(nil, uint16(len(e))))
		bundle.Write(e)
		if err := rng.Append(rfc6962.DefaultHasher.HashLeaf(e), w.visit); err != nil {
			return nil, err
		}
		if w.err != nil {
			return nil, w.err
		}
		if inBundle++; inBundle == layout.EntryBundleWidth {
			if err := w.write(layout.EntriesPath((rng.End()-1)/layout.EntryBundleWidth, 0), bundle.Bytes()); err != nil {
				return nil, err
			}
			bundle.Reset()
			inBundle = 0
		}
	}
	size := rng.End()
	if inBundle > 0 {
		if err := w.write(layout.EntriesPath(size/layout.EntryBundleWidth, uint8(inBundle)), bundle.Bytes()); err != nil {
			return nil, err
		}
	}
	for level, t := range w.tiles {
		if len(t) == 0 {
			continue
		}
		index := (size >> (uint64(level) * layout.TileHeight)) / layout.TileWidth
		if err := w.write(layout.TilePath(uint64(level), index, uint8(len(t)/32)), t); err != nil {
			return nil, err
		}
	}
	root := rfc6962.DefaultHasher.EmptyRoot()
	if size > 0 {
		root, _ = rng.GetRootHash(nil)
	}
	signed, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n%d\n%s\n", signer.Name(), size, base64.StdEncoding.EncodeToString(root))}, signer)
	if err != nil {
		return nil, err
	}
	if err := w.write(layout.CheckpointPath, signed); err != nil {
		return nil, err
	}
	return &Checkpoint{Size: size, Root: root, Note: signed}, nil
}

type writer struct {
	dir   string
	tiles [][]byte
	err   error
}

func (w *writer) visit(id compact.NodeID, hash []byte) {
	if id.Level%layout.TileHeight != 0 || w.err != nil {
		return
	}
	level := int(id.Level / layout.TileHeight)
	for len(w.tiles) <= level {
		w.tiles = append(w.tiles, nil)
	}
	w.tiles[level] = append(w.tiles[level], hash...)
	if id.Index%layout.TileWidth == layout.TileWidth-1 {
		w.err = w.write(layout.TilePath(uint64(level), id.Index/layout.TileWidth, 0), w.tiles[level])
		w.tiles[level] = w.tiles[level][:0]
	}
}

func (w *writer) write(rel string, b []byte) error {
	p := filepath.Join(w.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// Scenario generates a log's entries: a policy, Agents registered agents,
// then decisions round-robin over the agents — every DenyEvery-th a deny,
// the others allows — each allow followed ResultLag entries later by its
// result. Times advance by Step per entry from Start.
type Scenario struct {
	Start     time.Time
	Step      time.Duration
	Agents    int
	DenyEvery int
	ResultLag int
}

// DefaultScenario is a log of well-behaved agents.
func DefaultScenario() Scenario {
	return Scenario{Start: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), Step: time.Millisecond, Agents: 8, DenyEvery: 4, ResultLag: 3}
}

// Agent is the SPIFFE ID of the scenario's n-th agent.
func Agent(n int) string { return fmt.Sprintf("spiffe://dev.ztlog.local/agent/a%d", n) }

// Broker is the scenario's broker.
const Broker = "spiffe://dev.ztlog.local/broker/local"

// Admin is the scenario's administrator.
const Admin = "spiffe://dev.ztlog.local/admin"

// PolicyHash is the policy every decision names.
var PolicyHash = "sha256:" + fmt.Sprintf("%064x", 1)

// Allow returns an allow decision entry.
func Allow(t time.Time, n uint64, actor string) *entry.Decision {
	return &entry.Decision{
		Time: entry.FormatTime(t), CorrelationID: fmt.Sprintf("c-%d", n), Actor: actor,
		Authn:  entry.Authn{Method: "x509-svid", Serial: fmt.Sprintf("%x", n+1)},
		Action: "demo.echo", Resource: fmt.Sprintf("demo://item/%d", n),
		ArgsDigest: entry.Digest([]byte(fmt.Sprintf("args %d", n))), ActionDigest: ActionDigest(n),
		Broker: Broker, Effect: entry.Allow, Policy: entry.PolicyRef{Hash: PolicyHash, Engine: "opa", Revision: "r1"},
		Receipt: &entry.ReceiptRef{ID: fmt.Sprintf("rcpt-%d", n), KeyID: "k1", Audience: Broker, Expires: entry.FormatTime(t.Add(5 * time.Minute))},
	}
}

// Deny returns a deny decision entry.
func Deny(t time.Time, n uint64, actor string) *entry.Decision {
	return &entry.Decision{
		Time: entry.FormatTime(t), CorrelationID: fmt.Sprintf("c-%d", n), Actor: actor,
		Authn:  entry.Authn{Method: "x509-svid", Serial: fmt.Sprintf("%x", n+1)},
		Action: "aws.ec2.terminate_instances", Resource: fmt.Sprintf("i-%08x", n), ActionDigest: ActionDigest(n),
		Effect: entry.Deny, Reasons: []entry.Reason{{Code: "policy.denied", Message: "infrastructure termination needs approval"}},
		Policy: entry.PolicyRef{Hash: PolicyHash, Engine: "opa", Revision: "r1"},
	}
}

// ActionDigest is the scenario's action digest for the n-th decision.
func ActionDigest(n uint64) string { return entry.Digest([]byte(fmt.Sprintf("action %d", n))) }

// ResultFor returns a result entry for the allow at index, whose leaf is
// allowLeaf.
func ResultFor(t time.Time, index uint64, allowLeaf []byte, allow *entry.Decision) *entry.Result {
	status := 0
	return &entry.Result{
		Time: entry.FormatTime(t), CorrelationID: allow.CorrelationID,
		DecisionIndex: index, DecisionLeafHash: base64.StdEncoding.EncodeToString(rfc6962.DefaultHasher.HashLeaf(allowLeaf)),
		ActionDigest: allow.ActionDigest, Broker: allow.Broker, ReceiptID: allow.Receipt.ID,
		Outcome: "ok", ExitStatus: &status,
		Statement: entry.Attestation{Digest: entry.Digest([]byte(fmt.Sprintf("statement %d", index)))},
	}
}

// Register returns an agent registration.
func Register(t time.Time, id string) *entry.Agent {
	return &entry.Agent{Time: entry.FormatTime(t), CorrelationID: "reg-" + id, Op: entry.AgentRegister, ID: id, Brokers: []string{Broker}, By: Admin}
}

// Revoke returns an agent revocation.
func Revoke(t time.Time, id string) *entry.Agent {
	return &entry.Agent{Time: entry.FormatTime(t), CorrelationID: "rev-" + id, Op: entry.AgentRevoke, ID: id, By: Admin}
}

// MustMarshal is entry.Marshal for entries known to be valid.
func MustMarshal(e entry.Entry) []byte {
	b, err := entry.Marshal(e)
	if err != nil {
		panic(err)
	}
	return b
}

type pendingResult struct {
	due   uint64
	index uint64
	leaf  []byte
	n     uint64 // the allow's decision number
	t     time.Time
}

// template is a marshaled entry cut at the values that vary, so that
// entries of one shape are made by concatenation (about a microsecond)
// instead of entry.Marshal (tens of microseconds). Entries made this
// way are byte-identical to Marshal's (tested).
type template struct {
	segs [][]byte // len(slots)+1
}

// newTemplate marshals e and cuts it at each of vals (which must each
// occur exactly once, as a JSON string or number value).
func newTemplate(e entry.Entry, vals ...string) *template {
	b := MustMarshal(e)
	type cut struct{ at, end int }
	var cuts []cut
	for _, v := range vals {
		var at, n int = -1, 0
		for _, pat := range []string{"\"" + v + "\"", ":" + v + ",", ":" + v + "}"} {
			for k := 0; ; {
				j := bytes.Index(b[k:], []byte(pat))
				if j < 0 {
					break
				}
				at = k + j + 1
				n++
				k += j + 1
			}
		}
		if n != 1 {
			panic(fmt.Sprintf("audittest: value %q occurs %d times in %s", v, n, b))
		}
		cuts = append(cuts, cut{at, at + len(v)})
	}
	t := &template{}
	prev := 0
	for k, c := range cuts {
		if c.at < prev {
			panic(fmt.Sprintf("audittest: template values out of order at %d (%q)", k, vals[k]))
		}
		t.segs = append(t.segs, b[prev:c.at])
		prev = c.end
	}
	t.segs = append(t.segs, b[prev:])
	return t
}

func (t *template) fill(vals ...string) []byte {
	n := 0
	for _, s := range t.segs {
		n += len(s)
	}
	for _, v := range vals {
		n += len(v)
	}
	out := make([]byte, 0, n)
	for k, v := range vals {
		out = append(out, t.segs[k]...)
		out = append(out, v...)
	}
	return append(out, t.segs[len(vals)]...)
}

// The values of the n-th decision that vary, in the order they appear in
// the canonical (key-sorted) encoding.
func allowVals(t time.Time, n uint64, actor string) []string {
	d := Allow(t, n, actor)
	return []string{d.ActionDigest, d.Actor, d.ArgsDigest, d.Authn.Serial, d.CorrelationID, d.Receipt.Expires, d.Receipt.ID, d.Resource, d.Time}
}

func denyVals(t time.Time, n uint64, actor string) []string {
	d := Deny(t, n, actor)
	return []string{d.ActionDigest, d.Actor, d.Authn.Serial, d.CorrelationID, d.Resource, d.Time}
}

func resultVals(t time.Time, index uint64, leaf []byte, n uint64) []string {
	r := ResultFor(t, index, leaf, Allow(t, n, Agent(0)))
	return []string{r.ActionDigest, r.CorrelationID, fmt.Sprint(r.DecisionIndex), r.DecisionLeafHash, r.ReceiptID, r.Statement.Digest, r.Time}
}

// Entries yields n entries of the scenario.
func (s Scenario) Entries(n uint64) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		var i uint64
		emit := func(b []byte) bool {
			i++
			return yield(b)
		}
		at := func() time.Time { return s.Start.Add(time.Duration(i) * s.Step) }
		if n == 0 {
			return
		}
		if !emit(MustMarshal(&entry.Policy{Time: entry.FormatTime(at()), Hash: PolicyHash, Engine: "opa", Revision: "r1", SourceDigest: entry.Digest([]byte("policy")), LoadedBy: "startup"})) {
			return
		}
		for a := 0; a < s.Agents && i < n; a++ {
			if !emit(MustMarshal(Register(at(), Agent(a)))) {
				return
			}
		}
		// Templates are cut from entries whose values occur once each.
		t0 := time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
		allowT := newTemplate(Allow(t0, 987654321, Agent(7654321)), allowVals(t0, 987654321, Agent(7654321))...)
		denyT := newTemplate(Deny(t0, 987654321, Agent(7654321)), denyVals(t0, 987654321, Agent(7654321))...)
		sampleLeaf := []byte("sample")
		resultT := newTemplate(ResultFor(t0, 123456789, sampleLeaf, Allow(t0, 987654321, Agent(0))), resultVals(t0, 123456789, sampleLeaf, 987654321)...)

		var pending []pendingResult
		var decisions uint64
		for i < n {
			if len(pending) > 0 && pending[0].due <= i {
				p := pending[0]
				pending = pending[1:]
				if !emit(resultT.fill(resultVals(at(), p.index, p.leaf, p.n)...)) {
					return
				}
				continue
			}
			decisions++
			actor := Agent(int(decisions) % max(1, s.Agents))
			if s.DenyEvery > 0 && decisions%uint64(s.DenyEvery) == 0 {
				if !emit(denyT.fill(denyVals(at(), decisions, actor)...)) {
					return
				}
				continue
			}
			index := i
			b := allowT.fill(allowVals(at(), decisions, actor)...)
			if !emit(b) {
				return
			}
			pending = append(pending, pendingResult{due: i + uint64(s.ResultLag), index: index, leaf: b, n: decisions})
		}
	}
}

// Slice collects a sequence (for small logs in tests).
func Slice(s iter.Seq[[]byte]) [][]byte {
	var out [][]byte
	for b := range s {
		out = append(out, b)
	}
	return out
}

// Of yields the given entries.
func Of(entries [][]byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for _, e := range entries {
			if !yield(e) {
				return
			}
		}
	}
}
