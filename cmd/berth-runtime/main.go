// Command berth-runtime is berth's OCI runtime, with runc's command line:
// any tool that can drive runc (containerd, Docker's --add-runtime) can
// drive it. See package internal/runtime for the lifecycle and package
// internal/runtime/nsinit for what happens inside the container.
//
// The runtime starts twice per container (parent and init), so the Go
// runtime must not spend time sizing itself to the cgroup's CPU limit.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/berth-project/berth/internal/cgroups"
	"github.com/berth-project/berth/internal/runtime/nsinit"
)

// version is set at build time from git describe.
var version = "dev"

func init() {
	// "berth-runtime init" must run every step on the thread that execs.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.GOMAXPROCS(1)
		runtime.LockOSThread()
	}
}

// globalOptions are runc's global flags.
type globalOptions struct {
	root      string
	logPath   string
	logFormat string
	debug     bool
	logFile   io.Writer
}

// command is one subcommand: its flags are registered on fs by setup, and
// run receives the positional arguments.
type command struct {
	usage string
	short string
	setup func(fs *flag.FlagSet) func(g *globalOptions, args []string) error
}

var commands map[string]command

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		nsinit.Main()
		return
	}
	os.Exit(run(os.Args[1:]))
}

func run(argv []string) int {
	g := &globalOptions{}
	gfs := flag.NewFlagSet("berth-runtime", flag.ContinueOnError)
	gfs.SetOutput(io.Discard)
	gfs.StringVar(&g.root, "root", "/run/berth/runtime", "root directory for storage of container state")
	gfs.StringVar(&g.logPath, "log", "", "write the runtime's log to this file (default stderr)")
	gfs.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	gfs.BoolVar(&g.debug, "debug", false, "enable debug logging")
	var showVersion bool
	gfs.BoolVar(&showVersion, "version", false, "print the version")
	gfs.BoolVar(&showVersion, "v", false, "print the version")
	var ignoredBool bool
	var ignoredStr string
	gfs.BoolVar(&ignoredBool, "systemd-cgroup", false, "accepted for compatibility; berth-runtime uses cgroupfs")
	gfs.StringVar(&ignoredStr, "rootless", "auto", "accepted for compatibility")
	gfs.StringVar(&ignoredStr, "criu", "criu", "accepted for compatibility; checkpoint/restore is not supported")
	help := false
	gfs.BoolVar(&help, "help", false, "show help")
	gfs.BoolVar(&help, "h", false, "show help")
	if err := gfs.Parse(argv); err != nil {
		fmt.Fprintf(os.Stderr, "berth-runtime: %v\n", err)
		return 1
	}
	if showVersion {
		printVersion()
		return 0
	}
	args := gfs.Args()
	if help || len(args) == 0 {
		// Like runc: no command prints the help and succeeds.
		usage(os.Stdout, gfs)
		return 0
	}
	if err := setupLogging(g); err != nil {
		fmt.Fprintf(os.Stderr, "berth-runtime: %v\n", err)
		return 1
	}
	// Every command that finds the container's cgroup would otherwise
	// read mountinfo; the hierarchies are kept next to the state.
	cgroups.CacheMounts(filepath.Join(g.root, ".cgroup-mounts.json"))
	name := args[0]
	cmd, ok := commands[name]
	if !ok {
		return fail(g, fmt.Errorf("unknown command %q (see berth-runtime --help)", name))
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	runFn := cmd.setup(fs)
	fs.Usage = func() {}
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			fmt.Printf("Usage: berth-runtime %s %s\n\n%s\n\nOptions:\n", name, cmd.usage, cmd.short)
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return 0
		}
		return fail(g, fmt.Errorf("%s: %w", name, err))
	}
	if err := runFn(g, fs.Args()); err != nil {
		if ec, ok := err.(exitCode); ok {
			return int(ec)
		}
		return fail(g, err)
	}
	return 0
}

// exitCode is returned by run to exit with the container's status.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// fail reports err on stderr and in the log, runc style, and returns 1.
func fail(g *globalOptions, err error) int {
	if g.logFile != nil {
		slog.Error(err.Error())
	}
	fmt.Fprintf(os.Stderr, "berth-runtime: %v\n", err)
	return 1
}

func setupLogging(g *globalOptions) error {
	var w io.Writer = os.Stderr
	if g.logPath != "" {
		f, err := os.OpenFile(g.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return fmt.Errorf("open log file %s: %w", g.logPath, err)
		}
		w = f
		g.logFile = f
	}
	level := slog.LevelInfo
	if g.debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch g.logFormat {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return fmt.Errorf("unknown log format %q (want text or json)", g.logFormat)
	}
	slog.SetDefault(slog.New(h))
	return nil
}

func printVersion() {
	fmt.Printf("berth-runtime version %s\nspec: %s\ngo: %s\n", version, specVersion(), runtime.Version())
}

func usage(w io.Writer, gfs *flag.FlagSet) {
	fmt.Fprintf(w, "berth-runtime %s: an OCI runtime with runc's command line\n\nUsage: berth-runtime [global options] command [options] [arguments]\n\nCommands:\n", version)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].short)
	}
	fmt.Fprintf(w, "\nGlobal options:\n")
	gfs.SetOutput(w)
	gfs.PrintDefaults()
	gfs.SetOutput(io.Discard)
}

// needArgs checks the number of positional arguments.
func needArgs(args []string, n int, what string) error {
	if len(args) != n {
		return fmt.Errorf("expected %s, got %d argument(s): %s", what, len(args), strings.Join(args, " "))
	}
	return nil
}
