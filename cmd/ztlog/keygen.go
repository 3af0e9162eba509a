package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/contract/receipt"
	ztlog "github.com/zt-infra/ztlog/log"
)

func runKeygen(args []string) error {
	fset := flag.NewFlagSet("keygen", flag.ContinueOnError)
	origin := fset.String("origin", "", "the log's `origin`, a schema-less URL such as example.com/ztlog")
	out := fset.String("out", "", "`file` to write the signer key to (mode 0600; never overwritten)")
	if err := cli.Parse(fset, args, cli.Help{Usage: "ztlog keygen --origin ORIGIN --out FILE",
		About: "Create the log's checkpoint signing key (a note signer key) in FILE and print its verifier key."}); err != nil {
		return err
	}
	if *origin == "" || *out == "" {
		return usageError{errors.New("keygen needs --origin and --out")}
	}
	skey, vkey, err := ztlog.GenerateKey(*origin)
	if err != nil {
		return usageError{err}
	}
	if err := ztlog.WriteKeyFile(*out, skey); err != nil {
		return err
	}
	fmt.Println(vkey)
	return nil
}

func runReceiptKeygen(args []string) error {
	fset := flag.NewFlagSet("receipt-keygen", flag.ContinueOnError)
	alg := fset.String("alg", "EdDSA", "EdDSA (Ed25519) or ES256")
	out := fset.String("out", "", "`file` to write the private JWK to (mode 0600; never overwritten)")
	if err := cli.Parse(fset, args, cli.Help{Usage: "ztlog receipt-keygen --out FILE [--alg EdDSA|ES256]",
		About: "Create a receipt signing key (a private JWK) in FILE and print its kid."}); err != nil {
		return err
	}
	if *out == "" {
		return usageError{errors.New("receipt-keygen needs --out")}
	}
	k, err := receipt.GenerateKey(*alg)
	if err != nil {
		return usageError{err}
	}
	if err := receipt.WriteKeyFile(*out, k); err != nil {
		return err
	}
	fmt.Println(k.ID())
	return nil
}
