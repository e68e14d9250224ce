// Command berth is a placeholder until its issue lands; it prints its version.
package main

import (
	"fmt"
	"os"
)

// version is set at build time from git describe.
var version = "dev"

func main() {
	fmt.Fprintf(os.Stderr, "berth %s: not implemented yet\n", version)
	os.Exit(1)
}
