package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/transparency-dev/tessera/client"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
)

// Entry signatures: a log of real signed statements audits valid with the
// attestation check; a bad signature on one entry is a finding that names
// the entry and the check; without the check the report says signatures
// were not checked.
func TestAuditEntrySignatures(t *testing.T) {
	pki := newSignedPKI(t)
	entries := audittest.Slice(pki.Entries(40))
	k := newKey(t)
	ctx := context.Background()
	r, err := Run(ctx, client.FileFetcher{Root: writeLog(t, k, entries)}, k.policy, Options{Verifiers: []EntryVerifier{signatureCheck(t, pki)}})
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Check("signature.attestation"); !r.Valid || c == nil || c.Checked < 20 || c.Failed != 0 || !strings.HasPrefix(r.EntrySignatures, "checked") {
		t.Fatalf("valid signed log: valid %v, %+v, %+v", r.Valid, c, r.First)
	}

	bad := -1
	for i, leaf := range entries {
		e, _ := entry.Parse(leaf)
		d, ok := e.(*entry.Decision)
		if !ok || d.Effect != entry.Deny || i < 12 {
			continue
		}
		var env map[string]any
		json.Unmarshal(d.Attestation.Envelope, &env)
		sig := env["signatures"].([]any)[0].(map[string]any)
		raw, _ := base64.StdEncoding.DecodeString(sig["sig"].(string))
		raw[8] ^= 0x01
		sig["sig"] = base64.StdEncoding.EncodeToString(raw)
		d.Attestation.Envelope, _ = json.Marshal(env)
		if entries[i], err = entry.Marshal(d); err != nil {
			t.Fatal(err)
		}
		bad = i
		break
	}
	r, err = Run(ctx, client.FileFetcher{Root: writeLog(t, k, entries)}, k.policy, Options{Verifiers: []EntryVerifier{signatureCheck(t, pki)}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Valid || r.First.Check != "signature.attestation" || r.First.Index == nil || *r.First.Index != uint64(bad) || !strings.Contains(r.First.Message, "signature") {
		t.Fatalf("bad signature at entry %d: valid %v, first %+v", bad, r.Valid, r.First)
	}
	r, err = Run(ctx, client.FileFetcher{Root: writeLog(t, k, entries)}, k.policy, Options{})
	if err != nil || !r.Valid || !strings.HasPrefix(r.EntrySignatures, "NOT checked") || r.Check("signature.attestation") != nil {
		t.Fatalf("without the check: %v, valid %v, %q", err, r.Valid, r.EntrySignatures)
	}
}

// A statement the entry keeps only the digest of (its envelope was above
// the size limit) cannot be verified from the log: each is a warning of
// the signature check, never silently left out, and the log stays valid.
func TestAuditReportsUnverifiableStatements(t *testing.T) {
	pki := newSignedPKI(t)
	entries := audittest.Slice(pki.Entries(40))
	k := newKey(t)
	stripped := -1
	for i, leaf := range entries {
		e, _ := entry.Parse(leaf)
		r, ok := e.(*entry.Result)
		if !ok || len(r.Statement.Envelope) == 0 {
			continue
		}
		r.Statement.Envelope = nil
		b, err := entry.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		entries[i], stripped = b, i
		break
	}
	if stripped < 0 {
		t.Fatal("test log has no result with a statement")
	}
	r, err := Run(context.Background(), client.FileFetcher{Root: writeLog(t, k, entries)}, k.policy, Options{Verifiers: []EntryVerifier{signatureCheck(t, pki)}})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Check("signature.attestation")
	if !r.Valid || c == nil || c.Failed != 0 || c.Warned != 1 || len(c.Examples) != 1 || c.Examples[0].Index == nil || *c.Examples[0].Index != uint64(stripped) ||
		!strings.Contains(c.Examples[0].Message, "not verifiable") {
		t.Fatalf("stripped statement at %d: valid %v, %+v", stripped, r.Valid, c)
	}
}
