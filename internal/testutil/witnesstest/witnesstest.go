// Package witnesstest runs a real witness (witness/server) in-process for
// tests of the decision path.
package witnesstest

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/internal/trustpolicy"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/witnessing"
	"github.com/zt-infra/ztlog/witness/config"
	"github.com/zt-infra/ztlog/witness/cosigner"
	witnessserver "github.com/zt-infra/ztlog/witness/server"
	"github.com/zt-infra/ztlog/witness/state"
)

// ForLog returns, for contracttest.Options.Witnessing, a function that
// runs a real witness "w1" on 127.0.0.1 for the log of key until the test
// ends, and returns the log's witness collection and the trust policy text
// (quorum: w1).
func ForLog(t *testing.T) func(*ztlog.Key) (*witnessing.Collector, string) {
	return func(key *ztlog.Key) (*witnessing.Collector, string) {
		skey, _, err := cosigner.Generate("witness.example/w1", cosigner.Ed25519)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := cosigner.Parse(skey)
		cfg, err := config.Parse("w1", []byte(fmt.Sprintf(`{"logs":[{"origin":%q,"verifier_key":%q}]}`, key.Origin(), key.VerifierKey)))
		if err != nil {
			t.Fatal(err)
		}
		st, err := state.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		ws, err := witnessserver.New(witnessserver.Options{Cosigners: []*cosigner.Cosigner{c}, Store: st, Config: func() *config.Config { return cfg }})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: ws.Handler()}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close(); st.Close() })
		text := fmt.Sprintf("log %s\nwitness w1 %s http://%s/\nquorum w1\n", key.VerifierKey, c.VerifierKey, ln.Addr())
		p, err := trustpolicy.Parse([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		col, err := witnessing.New(p, witnessing.Options{Origin: key.Origin(), Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return col, text
	}
}
