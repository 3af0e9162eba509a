package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/transparency-dev/tessera/client"
	"github.com/zt-infra/ztlog/contract"
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
		e, _ := contract.Parse(leaf)
		d, ok := e.(*contract.Decision)
		if !ok || d.Effect != contract.Deny || i < 12 {
			continue
		}
		var env map[string]any
		json.Unmarshal(d.Attestation.Envelope, &env)
		sig := env["signatures"].([]any)[0].(map[string]any)
		raw, _ := base64.StdEncoding.DecodeString(sig["sig"].(string))
		raw[8] ^= 0x01
		sig["sig"] = base64.StdEncoding.EncodeToString(raw)
		d.Attestation.Envelope, _ = json.Marshal(env)
		if entries[i], err = contract.Marshal(d); err != nil {
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
