// Command genman writes berth's man pages, one per command, generated from
// the command tree: go run ./cmd/berth/genman -o DIR.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/berth-project/berth/internal/cli/commands"
)

func main() {
	dir := flag.String("o", "man/man1", "directory to write the pages to")
	flag.Parse()
	if err := commands.GenManTree(commands.NewRootCommand("dev"), *dir, time.Now()); err != nil {
		fmt.Fprintf(os.Stderr, "genman: %v\n", err)
		os.Exit(1)
	}
}
