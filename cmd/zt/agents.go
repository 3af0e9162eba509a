package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/client"
)

// Exit statuses of zt agents: 0 done, 1 the service refused or failed, 2
// usage error.
const exitAgentsFailed = 1

const agentsUsage = `usage: zt agents register|revoke|list|show --server URL --svid PREFIX [flags]

Manage the agent registry with an administrator's X.509-SVID (one of the
service's --admin IDs). Every change is committed to the log as an agent
entry before it takes effect.

  zt agents register --id SPIFFE-ID [--owner O] [--broker ID]... [--label K=V]...
  zt agents revoke   --id SPIFFE-ID
  zt agents show     --id SPIFFE-ID     the record, as JSON
  zt agents list                        every record: id, status, owner, log index

exit status: 0 done, 1 refused or failed, 2 usage error
(zt agents <subcommand> -h for flags)
`

// agentsFlags are the flags of every zt agents subcommand.
type agentsFlags struct {
	server, svid, bundle, serverID string
	timeout                        time.Duration
	asJSON                         bool
	id, owner                      string
	brokers, labels                listFlag
}

func (f *agentsFlags) register(fs *flag.FlagSet, op string) {
	fs.StringVar(&f.server, "server", "", "ztlog base `URL`, https://host:port")
	fs.StringVar(&f.svid, "svid", "", "path `PREFIX` of an administrator's X.509-SVID: PREFIX.pem and PREFIX.key")
	fs.StringVar(&f.bundle, "bundle", "", "trust bundle `file` (default: bundle.pem next to the SVID)")
	fs.StringVar(&f.serverID, "server-id", "", "the server's SPIFFE `ID` (default: any member of the SVID's trust domain)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "request timeout")
	fs.BoolVar(&f.asJSON, "json", false, "print the service's answer as JSON")
	if op == "list" {
		return
	}
	fs.StringVar(&f.id, "id", "", "the agent's SPIFFE `ID`")
	if op == "register" {
		fs.StringVar(&f.owner, "owner", "", "who answers for the agent (free text)")
		fs.Var(&f.brokers, "broker", "SPIFFE `ID` of a broker the agent may use (repeat, or comma-separated)")
		fs.Var(&f.labels, "label", "`key=value` label (repeat)")
	}
}

// listFlag is a repeatable flag; commas separate values too.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, strings.Split(s, ",")...); return nil }

func runAgents(args []string, stdout, stderr io.Writer) int {
	ops := []string{"register", "revoke", "list", "show"}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		w := stdout
		if len(args) == 0 {
			w = stderr
		}
		fmt.Fprint(w, agentsUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return 0
	}
	op := args[0]
	if !contains(ops, op) {
		fmt.Fprintf(stderr, "%s\n\n%s", cli.UnknownCommand("zt agents", op, ops), agentsUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("zt agents "+op, flag.ContinueOnError)
	var f agentsFlags
	f.register(fs, op)
	h := cli.Help{Usage: "zt agents " + op + " --server URL --svid PREFIX [flags]", About: agentsAbout[op]}
	if code := parseStatus(fs, args[1:], h, stderr, exitUsage); code >= 0 {
		return code
	}
	c, err := f.client(op)
	if err != nil {
		fmt.Fprintf(stderr, "zt agents %s: %v\n", op, err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	if err := f.do(ctx, c, op, stdout); err != nil {
		fmt.Fprintf(stderr, "zt agents %s: %v\n", op, err)
		var se *client.ServiceError
		if errors.As(err, &se) && f.asJSON {
			stdout.Write(se.Body)
		}
		return exitAgentsFailed
	}
	return 0
}

var agentsAbout = map[string]string{
	"register": "Register an agent (or replace its record): committed as an agent entry, then in effect.",
	"revoke":   "Revoke an agent: committed as an agent entry; its decisions are denied from then on.",
	"show":     "Print an agent's registry record as JSON.",
	"list":     "List every registry record, registered and revoked.",
}

// client checks the flags and builds the SDK client.
func (f *agentsFlags) client(op string) (*client.Client, error) {
	if f.server == "" || f.svid == "" {
		return nil, errors.New("needs --server and --svid")
	}
	if op != "list" && f.id == "" {
		return nil, errors.New("needs --id, the agent's SPIFFE ID")
	}
	if f.id != "" {
		if _, err := spiffeid.FromString(f.id); err != nil {
			return nil, fmt.Errorf("--id %q: %w", f.id, err)
		}
	}
	bundle := f.bundle
	if bundle == "" {
		bundle = filepath.Join(filepath.Dir(f.svid), "bundle.pem")
	}
	src, err := client.FromFiles(f.svid, bundle)
	if err != nil {
		return nil, fmt.Errorf("--svid %s: %w", f.svid, err)
	}
	cfg := client.Config{URL: f.server, SVID: src, Bundles: src, Timeout: f.timeout}
	if f.serverID != "" {
		if cfg.ServerID, err = spiffeid.FromString(f.serverID); err != nil {
			return nil, fmt.Errorf("--server-id: %w", err)
		}
	}
	return client.New(cfg)
}

// do runs op and prints its outcome.
func (f *agentsFlags) do(ctx context.Context, c *client.Client, op string, w io.Writer) error {
	switch op {
	case "register", "revoke":
		var res *api.AgentResponse
		var err error
		if op == "register" {
			req := api.AgentRequest{ID: f.id, Owner: f.owner, Brokers: f.brokers}
			if req.Labels, err = parseLabels(f.labels); err != nil {
				return err
			}
			res, err = c.RegisterAgent(ctx, req)
		} else {
			res, err = c.RevokeAgent(ctx, f.id)
		}
		if err != nil {
			return err
		}
		if f.asJSON {
			return printJSON(w, res)
		}
		fmt.Fprintf(w, "%s %s (log index %d, correlation %s)\n", res.Agent.Status, res.Agent.ID, res.Log.Index, res.CorrelationID)
		return nil
	case "show":
		a, err := c.Agent(ctx, f.id)
		if err != nil {
			return err
		}
		return printJSON(w, a)
	}
	all, err := c.Agents(ctx)
	if err != nil {
		return err
	}
	if f.asJSON {
		return printJSON(w, api.AgentList{Agents: all})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tOWNER\tINDEX\tUPDATED")
	for _, a := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", a.ID, a.Status, a.Owner, a.Index, a.Updated)
	}
	return tw.Flush()
}

func parseLabels(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--label %q: want key=value", kv)
		}
		m[k] = v
	}
	return m, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
