//go:build !linux

// Command build compares berthd's Dockerfile builds with Docker's; it
// runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench/build: runs on linux only")
	os.Exit(1)
}
