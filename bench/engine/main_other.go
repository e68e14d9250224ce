//go:build !linux

// Command engine compares berthd's containers with Docker's; it runs on
// Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench/engine: runs on linux only")
	os.Exit(1)
}
