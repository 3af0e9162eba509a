package gate

import (
	"context"
	"net/http"
	"time"

	"github.com/zt-infra/ztlog/contract"
	"github.com/zt-infra/ztlog/contract/policy"
	ztlog "github.com/zt-infra/ztlog/log"
)

// PolicyCommitter commits a `policy` entry to l for each version that comes
// into force (policy.ManagerConfig.Commit).
func PolicyCommitter(l *ztlog.Log, timeout time.Duration) policy.CommitFunc {
	if timeout <= 0 {
		timeout = DefaultDecisionTimeout
	}
	return func(ctx context.Context, v policy.Version, loadedBy string) (uint64, error) {
		leaf, err := contract.Marshal(&contract.Policy{
			Time: contract.FormatTime(time.Now()), Hash: v.Hash, Engine: v.Engine, Revision: v.Revision,
			SourceDigest: v.SourceDigest, LoadedBy: loadedBy,
		})
		if err != nil {
			return 0, err
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return l.Append(ctx, leaf)
	}
}

// policyStatus is GET /v1/policy: the version in force, its policy entry,
// and why the last reload failed, if it did.
func (g *Gate) policyStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if g.cfg.Policy != nil {
		contract.WriteJSON(w, http.StatusOK, g.cfg.Policy.Status())
		return
	}
	contract.WriteJSON(w, http.StatusOK, policy.Status{Version: g.cfg.PDP.Current().Version()})
}
