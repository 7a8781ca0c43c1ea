// Command tokenrun drives PKCS#11 tokens from sandboxed Lua procedures.
package main

import "os"

func main() {
	os.Exit(runMain(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
