package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
)

var noTime time.Time

func mustPolicy(t testing.TB, text string) *trustpolicy.Policy {
	t.Helper()
	p, err := trustpolicy.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func encode(t testing.TB, a *Answer) []byte {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyAgentHistory(t *testing.T) {
	l := vectorLog(t)
	h, err := Verify(encode(t, l.answer(t, AgentKey(agentA))), AgentKey(agentA), l.policy, noTime)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint64{1, 2, 5, 6} // registration, allow, its result, deny
	if len(h.Entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(h.Entries), len(want))
	}
	for k, i := range want {
		if h.Entries[k].Index != i {
			t.Errorf("entry %d: index %d, want %d", k, h.Entries[k].Index, i)
		}
	}
	if h.Checkpoint.Size != 7 {
		t.Errorf("checkpoint size %d, want 7", h.Checkpoint.Size)
	}
}

func TestVerifyCorrelationHistory(t *testing.T) {
	l := vectorLog(t)
	h, err := Verify(encode(t, l.answer(t, CorrelationKey("corr-1"))), CorrelationKey("corr-1"), l.policy, noTime)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint64{2, 4, 5}
	if len(h.Entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(h.Entries), len(want))
	}
	for k, i := range want {
		if h.Entries[k].Index != i {
			t.Errorf("entry %d: index %d, want %d", k, h.Entries[k].Index, i)
		}
	}
}

func TestVerifyAbsentKey(t *testing.T) {
	l := vectorLog(t)
	key := AgentKey("spiffe://example.test/agent/nobody")
	h, err := Verify(encode(t, l.answer(t, key)), key, l.policy, noTime)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Entries) != 0 {
		t.Errorf("%d entries for an absent key", len(h.Entries))
	}
}

// TestVerifyAbsenceEdges: keys below and above every key of the map, and
// the empty map.
func TestVerifyAbsenceEdges(t *testing.T) {
	l := vectorLog(t)
	s := l.x.Snapshot()
	var below, above string
	for i := 0; below == "" || above == ""; i++ {
		k := AgentKey("spiffe://example.test/agent/" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676)))
		p, ok := s.Find(KeyHash(k))
		if ok {
			continue
		}
		if p == 0 && below == "" {
			below = k
		}
		if p == s.MapSize() && above == "" {
			above = k
		}
	}
	for _, k := range []string{below, above} {
		if _, err := Verify(encode(t, l.answer(t, k)), k, l.policy, noTime); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	empty := newTestLog(t, testOrigin)
	if _, err := Verify(encode(t, empty.answer(t, AgentKey(agentA))), AgentKey(agentA), empty.policy, noTime); err != nil {
		t.Errorf("empty log: %v", err)
	}
}

// TestVerifyRefusesTampering: every way of lying about a history fails,
// with the error that names it.
func TestVerifyRefusesTampering(t *testing.T) {
	l := vectorLog(t)
	key := AgentKey(agentA)
	other := vectorLog(t)
	otherAns := other.answer(t, AgentKey(agentB))
	cases := []struct {
		name   string
		tamper func(a *Answer)
		want   error
	}{
		{"entry missing", func(a *Answer) { a.Entries = append(a.Entries[:1], a.Entries[2:]...) }, ErrIncomplete},
		{"entry added", func(a *Answer) {
			a.Entries = append(a.Entries, Item{Index: 3, Leaf: l.leaves[3]})
			a.Membership.Count++
		}, ErrMapProof},
		{"entry of another agent, count kept", func(a *Answer) { a.Entries[3] = Item{Index: 3, Leaf: l.leaves[3]} }, ErrIncomplete},
		{"reordered", func(a *Answer) { a.Entries[0], a.Entries[1] = a.Entries[1], a.Entries[0] }, ErrIncomplete},
		{"leaf changed", func(a *Answer) { a.Entries[1].Leaf = append([]byte(nil), l.leaves[3]...) }, ErrIncomplete},
		{"forged map root", func(a *Answer) {
			ic, _ := ParseIndexText(noteText(a.IndexCheckpoint))
			ic.MapRoot[0] ^= 1
			signed, _ := ic.Sign(newTestLog(t, "example.test/other-log").signer)
			a.IndexCheckpoint = string(signed)
		}, ErrIndexSignature},
		{"map root changed in the text", func(a *Answer) { a.IndexCheckpoint = flipLine(a.IndexCheckpoint, 5) }, ErrIndexSignature},
		{"wrong size", func(a *Answer) { a.Size = 6 }, ErrCheckpoint},
		{"index checkpoint of another size", func(a *Answer) {
			ic, _ := ParseIndexText(noteText(a.IndexCheckpoint))
			ic.Size = 6
			signed, _ := ic.Sign(l.signer)
			a.IndexCheckpoint = string(signed)
		}, ErrIndexMismatch},
		{"membership of another key", func(a *Answer) { a.Membership = otherAns.Membership }, ErrMapProof},
		{"absence claimed for a present key", func(a *Answer) {
			_, abs := l.x.Snapshot().Prove(AgentKey("spiffe://example.test/agent/nobody"))
			a.Membership, a.Absence, a.Entries, a.LogProof = nil, abs, []Item{}, [][]byte{}
		}, ErrMapProof},
		{"log proof altered", func(a *Answer) { a.LogProof[0][0] ^= 1 }, ErrLogProof},
		{"log proof short", func(a *Answer) { a.LogProof = a.LogProof[1:] }, ErrLogProof},
		{"entry index shifted", func(a *Answer) { a.Entries[0].Index = 0 }, ErrIncomplete},
		{"log checkpoint as index checkpoint", func(a *Answer) { a.IndexCheckpoint = a.Checkpoint }, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := l.answer(t, key)
			c.tamper(a)
			_, err := Verify(encode(t, a), key, l.policy, noTime)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestVerifyWrongKeyAsked: an honest answer for one key is not an answer
// for another.
func TestVerifyWrongKeyAsked(t *testing.T) {
	l := vectorLog(t)
	_, err := Verify(encode(t, l.answer(t, AgentKey(agentA))), AgentKey(agentB), l.policy, noTime)
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v, want ErrMalformed", err)
	}
}

// TestVerifyEntryOfAnotherAgent: an index that (wrongly) put agent B's
// decision under agent A, signed by the log, is caught by the entry check.
func TestVerifyEntryOfAnotherAgent(t *testing.T) {
	l := vectorLog(t)
	s := l.x.Snapshot()
	st := l.x.keys[KeyHash(AgentKey(agentA))]
	st.indices = []uint64{1, 2, 3, 5, 6}
	var v Hash
	for _, i := range st.indices {
		v = ChainValue(v, i, l.x.LeafHashAt(i))
	}
	st.count, st.value = 5, v
	l.x.dirty = true
	l.x.changed[KeyHash(AgentKey(agentA))] = struct{}{}
	_ = s
	_, err := Verify(encode(t, l.answer(t, AgentKey(agentA))), AgentKey(agentA), l.policy, noTime)
	if !errors.Is(err, ErrNotTheKeys) {
		t.Fatalf("got %v, want ErrNotTheKeys", err)
	}
}

// TestSnapshotIncremental: snapshots taken as entries arrive (keys added
// and extended in between) have the root of an index built at once.
func TestSnapshotIncremental(t *testing.T) {
	l := newTestLog(t, testOrigin)
	// A snapshot of the empty map, then of a map without keys (a policy
	// entry), as a server makes them when a log starts.
	if r := l.x.Snapshot().Root(); r != emptyRoot {
		t.Fatal("the empty map's root is not SHA-256 of nothing")
	}
	l.add(t, &entry.Policy{Time: "2026-11-21T09:59:00Z", Hash: digest(0xaa), Engine: "opa", SourceDigest: digest(0xbb), LoadedBy: "startup"})
	if n := l.x.Snapshot().MapSize(); n != 0 {
		t.Fatalf("a policy entry made %d keys", n)
	}
	for n := 0; n < 300; n++ {
		actor := fmt.Sprintf("spiffe://example.test/agent/%d", n%7)
		l.add(t, decision(actor, fmt.Sprintf("corr-%d", n%13+n/50), n%60, entry.Allow))
		if n%17 == 0 || n == 299 {
			got := l.x.Snapshot()
			fresh := New(Options{})
			for _, leaf := range l.leaves {
				fresh.Apply(leaf)
			}
			want := fresh.Snapshot()
			if got.Root() != want.Root() {
				t.Fatalf("after %d entries: the incremental root differs from the one built at once", n+1)
			}
			if got.MapSize() != want.MapSize() {
				t.Fatalf("after %d entries: %d keys, want %d", n+1, got.MapSize(), want.MapSize())
			}
		}
	}
}
