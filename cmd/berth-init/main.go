// Command berth-init is the init of `docker run --init`: run as PID 1 of a
// container, it starts the command, forwards signals to it, reaps zombies
// and exits with the command's status. See package internal/initproc.
//
//	berth-init [--] command [args...]
//	berth-init --version
//
// It is bind-mounted into images of every kind, so it is built static, and
// kept small (no fmt, which would add about 190 KB). It lives as long as
// the container and is idle: the Go runtime must neither size itself to
// the cgroup's CPU limit nor poll it.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"os"
	"strings"

	"github.com/berth-project/berth/internal/initproc"
)

// version is set at build time from git describe.
var version = "dev"

const usage = "usage: berth-init [--] command [args...]\n       berth-init --version\n"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(argv []string) int {
	if len(argv) > 0 {
		switch arg := argv[0]; {
		case arg == "--":
			argv = argv[1:]
		case arg == "--version" || arg == "-version":
			os.Stdout.WriteString("berth-init version " + version + "\n")
			return 0
		case arg == "-h" || arg == "--help" || arg == "-help":
			os.Stdout.WriteString(usage)
			return 0
		case strings.HasPrefix(arg, "-"):
			os.Stderr.WriteString("berth-init: unknown option " + arg + "\n" + usage)
			return initproc.ExitUsage
		}
	}
	if len(argv) == 0 {
		os.Stderr.WriteString("berth-init: no command given\n" + usage)
		return initproc.ExitUsage
	}
	return initproc.Run(argv, os.Stderr)
}
