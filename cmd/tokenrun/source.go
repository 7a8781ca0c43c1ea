package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11"
	"github.com/tokenrun/tokenrun/token/soft"
)

// tokenFlags select where tokens come from: one PKCS#11 module, or software tokens.
func tokenFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "module", Aliases: []string{"m"}, EnvVars: []string{"TOKENRUN_MODULE"},
			Usage: "PKCS#11 library of the token (the bank's KAZTOKEN driver, SoftHSM2, openCryptoki, OpenSC)"},
		&cli.StringSliceFlag{Name: "soft", EnvVars: []string{"TOKENRUN_SOFT"},
			Usage: "use the software token in `DIR` (a blank one is created in an empty DIR); repeat for several"},
		&cli.StringFlag{Name: "token", EnvVars: []string{"TOKENRUN_TOKEN"},
			Usage: "PKCS#11 `URI` narrowing which token counts, e.g. pkcs11:token=KAZTOKEN;serial=0123"},
	}
}

// openSource opens the token provider the flags name, and the --token URI.
func openSource(c *cli.Context) (token.Provider, *token.URI, error) {
	uri, err := token.ParseURI(c.String("token"))
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("--token: %w", err)}
	}
	module := c.String("module")
	if module == "" {
		module = uri.ModulePath
	}
	dirs := c.StringSlice("soft")
	switch {
	case module != "" && len(dirs) > 0:
		return nil, nil, usageError{errors.New("give either --module or --soft, not both")}
	case module != "":
		p, err := pkcs11.Open(module)
		if err != nil {
			return nil, nil, usageError{err}
		}
		return p, uri, nil
	case len(dirs) > 0:
		p, err := soft.Open(soft.Options{}, dirs...)
		if err != nil {
			return nil, nil, usageError{err}
		}
		return p, uri, nil
	}
	return nil, nil, usageError{errors.New("no token source: give --module PATH (the token's PKCS#11 library) or --soft DIR (a software token)")}
}
