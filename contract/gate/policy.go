package gate

import (
	"context"
	"net/http"
	"time"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/internal/httperr"
	ztlog "github.com/zt-infra/ztlog/log"
)

// PolicyCommitter commits a `policy` entry to l for each version that comes
// into force (pdp.ManagerConfig.Commit).
func PolicyCommitter(l *ztlog.Log, timeout time.Duration) pdp.CommitFunc {
	if timeout <= 0 {
		timeout = DefaultDecisionTimeout
	}
	return func(ctx context.Context, v pdp.Version, loadedBy string) (uint64, error) {
		leaf, err := entry.Marshal(&entry.Policy{
			Time: entry.FormatTime(time.Now()), Hash: v.Hash, Engine: v.Engine, Revision: v.Revision,
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
		httperr.WriteJSON(w, http.StatusOK, g.cfg.Policy.Status())
		return
	}
	httperr.WriteJSON(w, http.StatusOK, pdp.Status{Version: g.cfg.PDP.Current().Version()})
}
