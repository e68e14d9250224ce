package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
	brt "github.com/berth-project/berth/internal/runtime"
	"github.com/berth-project/berth/internal/runtime/examplespec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func specVersion() string { return specs.Version }

func init() {
	commands = map[string]command{
		"create":   {"[options] <container-id>", "create a container", cmdCreate},
		"run":      {"[options] <container-id>", "create and start a container", cmdRun},
		"start":    {"<container-id>", "start a created container", cmdStart},
		"state":    {"<container-id>", "print the state of a container", cmdState},
		"kill":     {"[--all] <container-id> [signal]", "send a signal to the container's init process", cmdKill},
		"delete":   {"[--force] <container-id>", "delete a container", cmdDelete},
		"list":     {"[options]", "list containers", cmdList},
		"ps":       {"[--format table|json] <container-id> [ps options]", "list the processes of a container", cmdPs},
		"pause":    {"<container-id>", "suspend all processes of a container", cmdPause},
		"resume":   {"<container-id>", "resume a paused container", cmdResume},
		"exec":     {"[options] <container-id> <command> [args...]", "run a process in a running container", cmdExec},
		"update":   {"[options] <container-id>", "update the resources of a container", cmdUpdate},
		"events":   {"[--stats] [--interval 5s] <container-id>", "print container events and stats", cmdEvents},
		"features": {"", "print the features this runtime supports", cmdFeatures},
		"spec":     {"[--bundle dir] [--rootless]", "write a default config.json", cmdSpec},
	}
}

// createFlags are shared by create and run.
type createFlags struct {
	bundle, consoleSocket, pidFile string
	noPivot, noNewKeyring          bool
	preserveFDs                    int
}

func (c *createFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.bundle, "bundle", "", "path to the bundle directory (default: current directory)")
	fs.StringVar(&c.bundle, "b", "", "short for --bundle")
	fs.StringVar(&c.consoleSocket, "console-socket", "", "AF_UNIX socket that receives the pty master")
	fs.StringVar(&c.pidFile, "pid-file", "", "write the container's init pid to this file")
	fs.BoolVar(&c.noPivot, "no-pivot", false, "do not use pivot_root (for a rootfs on ramfs)")
	fs.BoolVar(&c.noNewKeyring, "no-new-keyring", false, "do not create a new session keyring")
	fs.IntVar(&c.preserveFDs, "preserve-fds", 0, "pass N additional fds (from 3) to the container")
}

func (c *createFlags) options() (string, brt.CreateOptions) {
	bundle := c.bundle
	if bundle == "" {
		bundle, _ = os.Getwd()
	}
	return bundle, brt.CreateOptions{
		ConsoleSocket: c.consoleSocket, PidFile: c.pidFile, NoPivot: c.noPivot,
		NoNewKeyring: c.noNewKeyring, PreserveFDs: c.preserveFDs,
	}
}

func rt(g *globalOptions) *brt.Runtime { return &brt.Runtime{Root: g.root} }

func cmdCreate(fs *flag.FlagSet) func(*globalOptions, []string) error {
	var cf createFlags
	cf.register(fs)
	return func(g *globalOptions, args []string) error {
		if err := needArgs(args, 1, "a container id"); err != nil {
			return err
		}
		bundle, opts := cf.options()
		_, err := rt(g).Create(args[0], bundle, opts)
		return err
	}
}

func cmdRun(fs *flag.FlagSet) func(*globalOptions, []string) error {
	var cf createFlags
	cf.register(fs)
	var detach, keep bool
	waitFD := -1
	fs.BoolVar(&detach, "detach", false, "detach from the container's process")
	fs.BoolVar(&detach, "d", false, "short for --detach")
	fs.BoolVar(&keep, "keep", false, "do not delete the container after it exits")
	fs.IntVar(&waitFD, "wait-fd", -1, "before reading the bundle, wait for one byte on this descriptor; at its end of file, exit creating nothing (berth-shim starts the runtime while the bundle is still being made)")
	return func(g *globalOptions, args []string) error {
		if err := needArgs(args, 1, "a container id"); err != nil {
			return err
		}
		if waitFD >= 0 {
			if goOn, err := waitForGo(waitFD); err != nil || !goOn {
				return err
			}
		}
		bundle, opts := cf.options()
		code, err := rt(g).Run(args[0], bundle, opts, detach, keep)
		if err != nil {
			return err
		}
		if code != 0 {
			return exitCode(code)
		}
		return nil
	}
}

// loadOne is the body of the commands that take exactly a container id.
func loadOne(g *globalOptions, args []string) (*brt.Container, error) {
	if len(args) < 1 {
		return nil, errors.New("expected a container id")
	}
	return rt(g).Load(args[0])
}

func simple(f func(c *brt.Container) error) func(fs *flag.FlagSet) func(*globalOptions, []string) error {
	return func(fs *flag.FlagSet) func(*globalOptions, []string) error {
		return func(g *globalOptions, args []string) error {
			if err := needArgs(args, 1, "a container id"); err != nil {
				return err
			}
			c, err := loadOne(g, args)
			if err != nil {
				return err
			}
			return f(c)
		}
	}
}

var (
	cmdStart  = simple(func(c *brt.Container) error { return c.Start() })
	cmdPause  = simple(func(c *brt.Container) error { return c.Pause() })
	cmdResume = simple(func(c *brt.Container) error { return c.Resume() })
	cmdState  = simple(func(c *brt.Container) error { return printJSON(c.State()) })
)

func printJSON(v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(data))
	return err
}

func cmdKill(fs *flag.FlagSet) func(*globalOptions, []string) error {
	var all bool
	fs.BoolVar(&all, "all", false, "send the signal to all processes of the container")
	fs.BoolVar(&all, "a", false, "short for --all")
	return func(g *globalOptions, args []string) error {
		if len(args) < 1 || len(args) > 2 {
			return fmt.Errorf("expected a container id and an optional signal, got %d argument(s)", len(args))
		}
		sig := unix.SIGTERM
		if len(args) == 2 {
			s, err := parseSignal(args[1])
			if err != nil {
				return err
			}
			sig = s
		}
		c, err := loadOne(g, args)
		if err != nil {
			return err
		}
		return c.Kill(sig, all)
	}
}

// parseSignal accepts "KILL", "SIGKILL" and "9".
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal number %d", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func cmdDelete(fs *flag.FlagSet) func(*globalOptions, []string) error {
	var force bool
	fs.BoolVar(&force, "force", false, "kill the container if it is running")
	fs.BoolVar(&force, "f", false, "short for --force")
	return func(g *globalOptions, args []string) error {
		if err := needArgs(args, 1, "a container id"); err != nil {
			return err
		}
		c, err := loadOne(g, args)
		if err != nil {
			if force && isNotFound(err) {
				return nil
			}
			return err
		}
		return c.Delete(force)
	}
}

func cmdList(fs *flag.FlagSet) func(*globalOptions, []string) error {
	var format string
	var quiet bool
	fs.StringVar(&format, "format", "table", "table or json")
	fs.StringVar(&format, "f", "table", "short for --format")
	fs.BoolVar(&quiet, "quiet", false, "print only ids")
	fs.BoolVar(&quiet, "q", false, "short for --quiet")
	return func(g *globalOptions, args []string) error {
		list, err := rt(g).List()
		if err != nil {
			return err
		}
		var states []brt.StateJSON
		for _, c := range list {
			states = append(states, c.State())
		}
		switch {
		case quiet:
			for _, s := range states {
				fmt.Println(s.ID)
			}
		case format == "json":
			if states == nil {
				states = []brt.StateJSON{}
			}
			data, _ := json.Marshal(states)
			fmt.Println(string(data))
		case format == "table":
			w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
			fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
			for _, s := range states {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
			}
			return w.Flush()
		default:
			return fmt.Errorf("invalid format %q (want table or json)", format)
		}
		return nil
	}
}

func cmdPs(fs *flag.FlagSet) func(*globalOptions, []string) error {
	var format string
	fs.StringVar(&format, "format", "table", "table or json")
	fs.StringVar(&format, "f", "table", "short for --format")
	return func(g *globalOptions, args []string) error {
		c, err := loadOne(g, args)
		if err != nil {
			return err
		}
		pids, err := c.Pids()
		if err != nil {
			return err
		}
		if format == "json" {
			if pids == nil {
				pids = []int{}
			}
			data, _ := json.Marshal(pids)
			fmt.Println(string(data))
			return nil
		}
		if format != "table" {
			return fmt.Errorf("invalid format %q (want table or json)", format)
		}
		psArgs := args[1:]
		if len(psArgs) == 0 {
			psArgs = []string{"-ef"}
		}
		out, err := exec.Command("ps", psArgs...).Output()
		if err != nil {
			return fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
		}
		return filterPs(string(out), pids)
	}
}

// filterPs prints ps's header and the lines of the container's pids.
func filterPs(out string, pids []int) error {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 {
		return nil
	}
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return errors.New("ps output has no PID column")
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	fmt.Println(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= col {
			continue
		}
		if p, err := strconv.Atoi(f[col]); err == nil && want[p] {
			fmt.Println(l)
		}
	}
	return nil
}

func cmdSpec(fs *flag.FlagSet) func(*globalOptions, []string) error {
	var bundle string
	var rootless bool
	fs.StringVar(&bundle, "bundle", "", "directory to write config.json in")
	fs.StringVar(&bundle, "b", "", "short for --bundle")
	fs.BoolVar(&rootless, "rootless", false, "generate a config for a rootless container")
	return func(g *globalOptions, args []string) error {
		if len(args) != 0 {
			return fmt.Errorf("spec takes no arguments")
		}
		p := filepath.Join(bundle, "config.json")
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("file %s exists: remove it first", p)
		}
		s := examplespec.New()
		if rootless {
			examplespec.ToRootless(s)
		}
		data, err := json.MarshalIndent(s, "", "\t")
		if err != nil {
			return err
		}
		return os.WriteFile(p, append(data, '\n'), 0o666)
	}
}

func isNotFound(err error) bool {
	return errdefs.IsNotFound(err)
}

// waitForGo reads one byte from fd and closes it (the container must not
// inherit it): true to go on, false at end of file (the caller gave up).
func waitForGo(fd int) (bool, error) {
	f := os.NewFile(uintptr(fd), "wait-fd")
	if f == nil {
		return false, fmt.Errorf("--wait-fd %d: not a descriptor", fd)
	}
	defer f.Close()
	var b [1]byte
	for {
		n, err := f.Read(b[:])
		switch {
		case n == 1:
			return true, nil
		case errors.Is(err, io.EOF):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("--wait-fd %d: %w", fd, err)
		}
	}
}
