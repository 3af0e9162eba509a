package mcp

// PolicyWatchCounts are the counters of the policy watcher of g: the
// checks it made, those that failed, and the times connected clients were
// told the tools shown changed (all 0 without a watcher).
func PolicyWatchCounts(g *Gateway) (checks, failures, told int64) {
	if g.watch == nil {
		return 0, 0, 0
	}
	return g.watch.checks.Load(), g.watch.failures.Load(), g.watch.told.Load()
}
