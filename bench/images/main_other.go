//go:build !linux

// Command images compares berth's image operations with Docker's; it runs
// on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench/images: runs on linux only")
	os.Exit(1)
}
