package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/zt-infra/ztlog/contract/policysource"
	"github.com/zt-infra/ztlog/internal/testutil/awstest"
	"github.com/zt-infra/ztlog/internal/testutil/gcptest"
	"github.com/zt-infra/ztlog/log/storage"
	"github.com/zt-infra/ztlog/log/storage/aws"
	"github.com/zt-infra/ztlog/log/storage/gcp"
)

// sharedPolicyStore checks the policy store of a driver with an object
// store, as two frontends of one log see it: open opens the driver once
// more (another frontend, its own clients). A version stored by frontend A
// is served by frontend B with the same source digest; a damaged object is
// refused, with an error that says so, by a frontend that reads it.
func sharedPolicyStore(t *testing.T, open func() *storage.Backend) {
	ctx := context.Background()
	a, b := open(), open()
	if a.Objects == nil {
		t.Fatal("the driver's backend has no object store")
	}
	hash := "sha256:" + strings.Repeat("cd", 32)
	v1 := &policysource.Source{Engine: "cedar", Files: map[string][]byte{"policy.cedar": []byte("permit(principal, action, resource);\n")}}
	v2 := &policysource.Source{Engine: "cedar", Files: map[string][]byte{"policy.cedar": []byte("// v2\npermit(principal, action, resource);\n")}}
	if err := ObjectPolicyStore(a.Objects).Put(ctx, hash, v1); err != nil {
		t.Fatalf("frontend A stores v1: %v", err)
	}
	srvB := policyServer(t, ObjectPolicyStore(b.Objects))
	status, body := get(t, srvB.URL+"/v1/policies/"+hash)
	if status != http.StatusOK {
		t.Fatalf("frontend B: GET by hash: %d %s", status, body)
	}
	got, err := policysource.Parse(body)
	if err != nil {
		t.Fatalf("frontend B served %q: %v", body, err)
	}
	if got.Digest() != v1.Digest() {
		t.Errorf("frontend B served source digest %s, want %s", got.Digest(), v1.Digest())
	}

	// A second version with the same hash, stored by B, is the latest for
	// A too; v1 stays reachable by its digest.
	if err := ObjectPolicyStore(b.Objects).Put(ctx, hash, v2); err != nil {
		t.Fatalf("frontend B stores v2: %v", err)
	}
	srvA := policyServer(t, ObjectPolicyStore(a.Objects))
	status, body = get(t, srvA.URL+"/v1/policies/"+hash)
	if status != http.StatusOK {
		t.Fatalf("frontend A: GET by hash: %d %s", status, body)
	}
	if got, err := policysource.Parse(body); err != nil || got.Digest() != v2.Digest() {
		t.Errorf("frontend A: the latest version with the hash is not v2 (%v)", err)
	}
	status, body = get(t, srvA.URL+"/v1/policies/"+hash+"?source_digest="+v1.Digest())
	if status != http.StatusOK {
		t.Fatalf("frontend A: GET v1 by digest: %d %s", status, body)
	}
	if got, err := policysource.Parse(body); err != nil || got.Digest() != v1.Digest() {
		t.Errorf("frontend A: v1 by digest is not v1 (%v)", err)
	}
	status, _ = get(t, srvA.URL+"/v1/policies/"+hash+"?source_digest="+"sha256:"+strings.Repeat("00", 32))
	if status != http.StatusNotFound {
		t.Errorf("an unknown source digest: %d, want 404", status)
	}
	status, _ = get(t, srvA.URL+"/v1/policies/"+"sha256:"+strings.Repeat("ef", 32))
	if status != http.StatusNotFound {
		t.Errorf("an unknown hash: %d, want 404", status)
	}

	// v2's object is changed in the store: it now holds v1's files (a
	// well-formed document, under the wrong key). A frontend that reads it
	// refuses it.
	bad, _ := v1.Marshal()
	if err := open().Objects.Put(ctx, policyDocKey(v2.Digest()), bad); err != nil {
		t.Fatal(err)
	}
	_, err = ObjectPolicyStore(open().Objects).Get(ctx, hash, "")
	if !errors.Is(err, ErrPolicyCorrupt) {
		t.Fatalf("reading the damaged object: %v, want ErrPolicyCorrupt", err)
	}
	if !strings.Contains(err.Error(), "not "+v2.Digest()) {
		t.Errorf("the error %q does not name the digest the object is stored under", err)
	}
	srvC := policyServer(t, ObjectPolicyStore(open().Objects))
	status, body = get(t, srvC.URL+"/v1/policies/"+hash)
	if status != http.StatusInternalServerError {
		t.Fatalf("GET of a damaged source: %d %s, want 500", status, body)
	}
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if e.Code != "policy_source_corrupt" {
		t.Errorf("error code %q, want policy_source_corrupt (body %s)", e.Code, body)
	}
	if !strings.Contains(e.Message, "changed or damaged") {
		t.Errorf("error message %q does not say the stored source was changed or damaged", e.Message)
	}
	// Storing the version again repairs the object.
	if err := ObjectPolicyStore(open().Objects).Put(ctx, hash, v2); err != nil {
		t.Fatal(err)
	}
	if _, err := ObjectPolicyStore(open().Objects).Get(ctx, hash, ""); err != nil {
		t.Errorf("after v2 was stored again: %v", err)
	}
}

// TestObjectPolicyStoreAWS: the AWS driver's policy store on a real
// MySQL-compatible database (MariaDB) and S3-compatible store (s3rver).
func TestObjectPolicyStoreAWS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB and s3rver; skipped with -short")
	}
	cfg := aws.Config{DSN: awstest.StartMariaDB(t).DSN, Bucket: awstest.Bucket, BucketPrefix: "logs/p", S3Endpoint: awstest.StartS3(t)}
	sharedPolicyStore(t, func() *storage.Backend {
		b, err := aws.Open(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// TestObjectPolicyStoreGCP: the GCP driver's policy store on spannertest
// and fake-gcs-server.
func TestObjectPolicyStoreGCP(t *testing.T) {
	emu := gcptest.Start(t)
	cfg := emu.Config("logs/p")
	sharedPolicyStore(t, func() *storage.Backend {
		b, err := gcp.Open(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b.Close != nil {
			t.Cleanup(func() { b.Close() })
		}
		return b
	})
}
