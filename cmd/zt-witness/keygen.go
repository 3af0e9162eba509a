package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/witness/cosigner"
)

func runKeygen(args []string) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	name := fs.String("name", "", "the witness's `name`, a schema-less URL such as witness.example/w1")
	out := fs.String("out", "", "`file` to write the signer key to (mode 0600; never overwritten)")
	alg := fs.String("algorithm", cosigner.Ed25519, "cosignature algorithm: ed25519 or ml-dsa-44")
	if err := parseFlags(fs, args, cli.Help{Usage: "zt-witness keygen --name NAME --out FILE [--algorithm ed25519|ml-dsa-44]",
		About: "Create a witness signer key in FILE and print its verifier key."}); err != nil {
		return err
	}
	if *name == "" || *out == "" {
		return usageError{errors.New("keygen needs --name and --out")}
	}
	skey, vkey, err := cosigner.Generate(*name, *alg)
	if err != nil {
		return usageError{err}
	}
	if err := cosigner.WriteKeyFile(*out, skey); err != nil {
		return err
	}
	fmt.Println(vkey)
	return nil
}
