package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/contract/conformance"
	"github.com/zt-infra/ztlog/contract/gate/identity"
)

// runConformance runs the adapter contract's conformance suite against a
// target: exit 0 every check passed, 1 a check failed, 2 usage error.
func runConformance(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("target", "", "the implementation under test, https://host:port")
	svid := fs.String("svid", "", "path prefix of a registered agent's X.509-SVID: PREFIX.pem and PREFIX.key")
	bundle := fs.String("bundle", "", "trust bundle, PEM or SPIFFE bundle JSON (default: bundle.pem next to the SVID)")
	jwtFile := fs.String("jwt", "", "file holding the agent's JWT-SVID (the compatibility check then uses it as a bearer token)")
	brokerSVID := fs.String("broker-svid", "", "path prefix of a broker's X.509-SVID (without it the result checks are skipped)")
	serverID := fs.String("server-id", "", "the target's SPIFFE ID (default: any member of the SVID's trust domain)")
	allow := fs.String("allow-action", "", "an action the target's policy allows the agent (default demo.echo)")
	deny := fs.String("deny-action", "", "an action the target's policy denies the agent (default aws.ec2.terminate_instances)")
	resource := fs.String("resource", "", "the resource of the actions asked (default demo://conformance)")
	timeout := fs.Duration("timeout", 15*time.Second, "bound on each request and each wait for a checkpoint")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	junit := fs.String("junit", "", "also write the report as JUnit XML to this file")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "zt conformance: "+format+"\n", a...)
		return code
	}
	if *target == "" || *svid == "" || fs.NArg() > 0 {
		return fail(exitUsage, "needs --target and --svid (and no other arguments)")
	}
	if *bundle == "" {
		*bundle = filepath.Join(filepath.Dir(*svid), "bundle.pem")
	}
	cfg := conformance.Config{Target: *target, AllowAction: *allow, DenyAction: *deny, Resource: *resource, Timeout: *timeout}
	src, err := identity.FromFiles(identity.Files{Cert: *svid + ".pem", Key: *svid + ".key", Bundle: *bundle})
	if err != nil {
		return fail(exitUsage, "--svid %s: %v", *svid, err)
	}
	cfg.Agent, cfg.Bundles = src, src
	if *brokerSVID != "" {
		b, err := identity.FromFiles(identity.Files{Cert: *brokerSVID + ".pem", Key: *brokerSVID + ".key", Bundle: *bundle})
		if err != nil {
			return fail(exitUsage, "--broker-svid %s: %v", *brokerSVID, err)
		}
		cfg.Broker = b
	}
	if *jwtFile != "" {
		b, err := os.ReadFile(*jwtFile)
		if err != nil {
			return fail(exitUsage, "--jwt: %v", err)
		}
		cfg.JWT = strings.TrimSpace(string(b))
	}
	if *serverID != "" {
		if cfg.ServerID, err = spiffeid.FromString(*serverID); err != nil {
			return fail(exitUsage, "--server-id: %v", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := conformance.Run(ctx, cfg)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	return writeConformance(rep, *asJSON, *junit, stdout, stderr)
}

func writeConformance(rep *conformance.Report, asJSON bool, junit string, stdout, stderr io.Writer) int {
	// The suite's details name its Config fields; this command's flags set them.
	flags := strings.NewReplacer("Config.AllowAction", "--allow-action", "Config.Broker", "--broker-svid")
	for i := range rep.Results {
		rep.Results[i].Detail = flags.Replace(rep.Results[i].Detail)
	}
	if asJSON {
		rep.WriteJSON(stdout)
	} else {
		rep.WriteText(stdout)
	}
	if junit != "" {
		f, err := os.Create(junit)
		if err == nil {
			err = rep.WriteJUnit(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "zt conformance: --junit: %v\n", err)
			return exitDeny
		}
	}
	if len(rep.Failed()) > 0 {
		return exitDeny // 1: a check failed
	}
	return exitAllow
}
