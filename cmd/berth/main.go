// Command berth is the command line client of berthd, with Docker's
// commands and flags. The work is done in internal/cli.
package main

import (
	"os"

	"github.com/berth-project/berth/internal/cli/commands"
)

// version is set at build time from git describe.
var version = "dev"

func main() {
	os.Exit(commands.Main(os.Args[1:], version))
}
