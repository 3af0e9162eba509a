package main

import (
	"fmt"
	"os"

	"github.com/zt-infra/ztlog/internal/fsx"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	ztlog "github.com/zt-infra/ztlog/log"
)

// writeTrustPolicy writes the trust policy an auditor of this log needs
// offline (zt-audit --policy): the log's key and the witness quorum its
// checkpoints are published with — the witness policy without the
// witnesses' URLs (which an offline verifier does not use, and which for
// the dev witness change at every start), with the log's own line added
// when the witness policy lacks it.
func writeTrustPolicy(path, witnessPolicy string, key *ztlog.Key) error {
	text := []byte("quorum none\n")
	if witnessPolicy != "" {
		var err error
		if text, err = os.ReadFile(witnessPolicy); err != nil {
			return err
		}
	}
	p, err := trustpolicy.Parse(text)
	if err != nil {
		return fmt.Errorf("%s: %w", witnessPolicy, err)
	}
	for _, l := range p.Logs {
		l.URL = ""
	}
	for _, w := range p.Witnesses {
		w.URL = ""
	}
	out := p.Marshal()
	if p.LogFor(key.Origin()) == nil {
		out = append([]byte("log "+key.VerifierKey+"\n"), out...)
	}
	if _, err := trustpolicy.Parse(out); err != nil {
		return err
	}
	out = append([]byte(fmt.Sprintf("# Trust policy for auditors of %s (zt-audit --policy): the log key and\n# the witness quorum its checkpoints are published with. Written by ztlog dev.\n", key.Origin())), out...)
	return fsx.WriteAtomic(path, out, 0o644)
}
