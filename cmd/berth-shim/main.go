// Command berth-shim supervises one container for berthd: it creates the
// container with berth-runtime, stays its parent, keeps its stdio and exit
// status and serves berthd over a unix socket in its state dir. berthd
// starts it through shim.Start; see package internal/shim for the
// handshake on --ready-fd and the RPC.
//
// The shim lives as long as its container: the Go runtime must not size
// itself to the cgroup's CPU limit at every start.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/shim"
)

// version is set at build time from git describe.
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(argv []string) int {
	fs := flag.NewFlagSet("berth-shim", flag.ContinueOnError)
	var o shim.Options
	var maxSize string
	readyFD := -1
	showVersion := false
	fs.StringVar(&o.ID, "id", "", "container id")
	fs.StringVar(&o.Bundle, "bundle", "", "OCI bundle directory")
	fs.StringVar(&o.Runtime, "runtime", "berth-runtime", "path of berth-runtime")
	fs.StringVar(&o.RuntimeRoot, "runtime-root", "/run/berth/runtime", "the runtime's --root")
	fs.StringVar(&o.StateDir, "state-dir", "", "the shim's directory: socket, exit status, pid files")
	fs.StringVar(&o.LogPath, "log-path", "", "json-file log of the container's output (empty: none)")
	fs.StringVar(&maxSize, "log-max-size", "0", "rotate the log at this size (bytes, or with k/m/g); 0 never")
	fs.IntVar(&o.LogMaxFile, "log-max-file", 1, "number of log files kept")
	fs.BoolVar(&o.Terminal, "tty", false, "give the container a pty")
	fs.BoolVar(&o.Stdin, "stdin", false, "keep the container's stdin open for attachers")
	fs.BoolVar(&o.PrestartRuntime, "prestart-runtime", false, "start the runtime's run at once, waiting for the start call before it reads the bundle")
	fs.IntVar(&readyFD, "ready-fd", -1, "write the start handshake to this fd and close it")
	fs.BoolVar(&showVersion, "version", false, "print the version")
	if err := fs.Parse(argv); err != nil {
		return 2
	}
	if showVersion {
		fmt.Printf("berth-shim version %s\n", version)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "berth-shim: unexpected arguments: %v\n", fs.Args())
		return 2
	}
	if readyFD >= 0 {
		o.Ready = os.NewFile(uintptr(readyFD), "ready")
	}
	logger := shim.NewLogger(os.Stderr, o.ID)
	ctx := log.WithLogger(context.Background(), logger)
	size, err := shim.ParseSize(maxSize)
	if err == nil {
		o.LogMaxSize = size
		err = shim.Serve(ctx, o)
	} else if o.Ready != nil {
		shim.ReportError(o.Ready, err)
	}
	if err != nil {
		logger.Error("shim failed", "error", err)
		return 1
	}
	return 0
}
