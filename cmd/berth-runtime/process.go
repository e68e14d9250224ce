package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/cgroups"
	brt "github.com/berth-project/berth/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func cmdExec(fs *flag.FlagSet) func(*globalOptions, []string) error {
	var (
		consoleSocket, cwd, user, processPath, pidFile, label, apparmor string
		env, caps, gids                                                 stringList
		tty, detach, noNewPrivs, ignorePaused                           bool
		preserveFDs                                                     int
	)
	fs.StringVar(&consoleSocket, "console-socket", "", "AF_UNIX socket that receives the pty master")
	fs.StringVar(&cwd, "cwd", "", "working directory in the container")
	fs.Var(&env, "env", "set an environment variable (repeatable)")
	fs.Var(&env, "e", "short for --env")
	fs.BoolVar(&tty, "tty", false, "allocate a pseudo-TTY")
	fs.BoolVar(&tty, "t", false, "short for --tty")
	fs.StringVar(&user, "user", "", "uid[:gid] to run as")
	fs.StringVar(&user, "u", "", "short for --user")
	fs.Var(&gids, "additional-gids", "additional gid (repeatable)")
	fs.Var(&gids, "g", "short for --additional-gids")
	fs.StringVar(&processPath, "process", "", "path to a process.json")
	fs.StringVar(&processPath, "p", "", "short for --process")
	fs.BoolVar(&detach, "detach", false, "detach from the process")
	fs.BoolVar(&detach, "d", false, "short for --detach")
	fs.StringVar(&pidFile, "pid-file", "", "write the process's pid to this file")
	fs.StringVar(&label, "process-label", "", "SELinux label for the process")
	fs.StringVar(&apparmor, "apparmor", "", "AppArmor profile for the process")
	fs.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs")
	fs.Var(&caps, "cap", "add a capability (repeatable)")
	fs.Var(&caps, "c", "short for --cap")
	fs.IntVar(&preserveFDs, "preserve-fds", 0, "pass N additional fds (from 3) to the process")
	fs.BoolVar(&ignorePaused, "ignore-paused", false, "allow exec in a paused container")
	var ignored string
	fs.StringVar(&ignored, "cgroup", "", "accepted for compatibility")
	return func(g *globalOptions, args []string) error {
		if len(args) < 1 {
			return errors.New("expected a container id")
		}
		c, err := rt(g).Load(args[0])
		if err != nil {
			return err
		}
		var p *specs.Process
		if processPath != "" {
			data, err := os.ReadFile(processPath)
			if err != nil {
				return fmt.Errorf("read process file: %w", err)
			}
			p = &specs.Process{}
			if err := json.Unmarshal(data, p); err != nil {
				return fmt.Errorf("parse process file %s: %w", processPath, err)
			}
		} else {
			if len(args) < 2 {
				return errors.New("expected a command to run")
			}
			spec, err := c.Config()
			if err != nil {
				return err
			}
			p = defaultExecProcess(spec.Process, args[1:])
		}
		if cwd != "" {
			p.Cwd = cwd
		}
		p.Env = append(p.Env, env...)
		if tty {
			p.Terminal = true
		}
		if user != "" {
			u, gid, hasGid := strings.Cut(user, ":")
			uid, err := strconv.ParseUint(u, 10, 32)
			if err != nil {
				return fmt.Errorf("invalid --user %q: want uid[:gid]", user)
			}
			p.User.UID = uint32(uid)
			if hasGid {
				n, err := strconv.ParseUint(gid, 10, 32)
				if err != nil {
					return fmt.Errorf("invalid --user %q: want uid[:gid]", user)
				}
				p.User.GID = uint32(n)
			}
		}
		for _, gs := range gids {
			n, err := strconv.ParseUint(gs, 10, 32)
			if err != nil {
				return fmt.Errorf("invalid --additional-gids %q", gs)
			}
			p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(n))
		}
		if label != "" {
			p.SelinuxLabel = label
		}
		if apparmor != "" {
			p.ApparmorProfile = apparmor
		}
		if noNewPrivs {
			p.NoNewPrivileges = true
		}
		if len(caps) > 0 {
			if p.Capabilities == nil {
				p.Capabilities = &specs.LinuxCapabilities{}
			}
			pc := p.Capabilities
			pc.Bounding = append(pc.Bounding, caps...)
			pc.Effective = append(pc.Effective, caps...)
			pc.Permitted = append(pc.Permitted, caps...)
		}
		if p.Cwd == "" {
			p.Cwd = "/"
		}
		opts := brt.ExecOptions{
			CreateOptions: brt.CreateOptions{ConsoleSocket: consoleSocket, PidFile: pidFile, PreserveFDs: preserveFDs},
			Detach:        detach, IgnorePaused: ignorePaused,
		}
		code, err := c.Exec(p, opts)
		if err != nil {
			return err
		}
		if code != 0 {
			return exitCode(code)
		}
		return nil
	}
}

// defaultExecProcess is the container's own process settings with new args,
// as runc does for exec without --process.
func defaultExecProcess(base *specs.Process, args []string) *specs.Process {
	p := &specs.Process{Args: args, Cwd: base.Cwd, Env: append([]string{}, base.Env...), User: base.User,
		Capabilities: base.Capabilities, NoNewPrivileges: base.NoNewPrivileges, ApparmorProfile: base.ApparmorProfile,
		SelinuxLabel: base.SelinuxLabel, Rlimits: base.Rlimits, OOMScoreAdj: nil}
	if p.Capabilities != nil {
		cp := *p.Capabilities
		p.Capabilities = &cp
	}
	return p
}

func cmdUpdate(fs *flag.FlagSet) func(*globalOptions, []string) error {
	var resourcesPath string
	fs.StringVar(&resourcesPath, "resources", "", "path to a JSON file with linux resources ('-' for stdin)")
	fs.StringVar(&resourcesPath, "r", "", "short for --resources")
	ints := map[string]*string{}
	for _, name := range []string{"blkio-weight", "cpu-period", "cpu-quota", "cpu-rt-period", "cpu-rt-runtime", "cpu-share",
		"memory", "memory-reservation", "memory-swap", "kernel-memory", "kernel-memory-tcp", "pids-limit", "cpuset-cpus", "cpuset-mems"} {
		v := new(string)
		ints[name] = v
		fs.StringVar(v, name, "", "set "+name)
	}
	return func(g *globalOptions, args []string) error {
		if err := needArgs(args, 1, "a container id"); err != nil {
			return err
		}
		c, err := rt(g).Load(args[0])
		if err != nil {
			return err
		}
		r := &specs.LinuxResources{}
		if resourcesPath != "" {
			var data []byte
			if resourcesPath == "-" {
				data, err = readAll(os.Stdin)
			} else {
				data, err = os.ReadFile(resourcesPath)
			}
			if err != nil {
				return fmt.Errorf("read resources: %w", err)
			}
			if err := json.Unmarshal(data, r); err != nil {
				return fmt.Errorf("parse resources: %w", err)
			}
		}
		if err := applyUpdateFlags(r, ints); err != nil {
			return err
		}
		return c.Update(r)
	}
}

func applyUpdateFlags(r *specs.LinuxResources, v map[string]*string) error {
	num := func(name string) (*int64, error) {
		s := *v[name]
		if s == "" {
			return nil, nil
		}
		n, err := parseSize(s)
		if err != nil {
			return nil, fmt.Errorf("invalid --%s %q: %w", name, s, err)
		}
		return &n, nil
	}
	unum := func(name string) (*uint64, error) {
		n, err := num(name)
		if n == nil || err != nil {
			return nil, err
		}
		if *n < 0 {
			return nil, fmt.Errorf("invalid --%s: must not be negative", name)
		}
		u := uint64(*n)
		return &u, nil
	}
	mem := func() *specs.LinuxMemory {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		return r.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		return r.CPU
	}
	for name, set := range map[string]func() error{
		"memory": func() error { n, err := num("memory"); setIf(n, func() { mem().Limit = n }); return err },
		"memory-reservation": func() error {
			n, err := num("memory-reservation")
			setIf(n, func() { mem().Reservation = n })
			return err
		},
		"memory-swap":       func() error { n, err := num("memory-swap"); setIf(n, func() { mem().Swap = n }); return err },
		"kernel-memory":     func() error { n, err := num("kernel-memory"); setIf(n, func() { mem().Kernel = n }); return err },
		"kernel-memory-tcp": func() error { n, err := num("kernel-memory-tcp"); setIf(n, func() { mem().KernelTCP = n }); return err },
		"cpu-share":         func() error { n, err := unum("cpu-share"); setIf(n, func() { cpu().Shares = n }); return err },
		"cpu-period":        func() error { n, err := unum("cpu-period"); setIf(n, func() { cpu().Period = n }); return err },
		"cpu-quota":         func() error { n, err := num("cpu-quota"); setIf(n, func() { cpu().Quota = n }); return err },
		"cpu-rt-period": func() error {
			n, err := unum("cpu-rt-period")
			setIf(n, func() { cpu().RealtimePeriod = n })
			return err
		},
		"cpu-rt-runtime": func() error {
			n, err := num("cpu-rt-runtime")
			setIf(n, func() { cpu().RealtimeRuntime = n })
			return err
		},
		"pids-limit": func() error {
			n, err := num("pids-limit")
			setIf(n, func() { r.Pids = &specs.LinuxPids{Limit: n} })
			return err
		},
		"blkio-weight": func() error {
			n, err := unum("blkio-weight")
			setIf(n, func() {
				w := uint16(*n)
				r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
			})
			return err
		},
	} {
		if err := set(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if s := *v["cpuset-cpus"]; s != "" {
		cpu().Cpus = s
	}
	if s := *v["cpuset-mems"]; s != "" {
		cpu().Mems = s
	}
	return nil
}

func setIf[T any](p *T, f func()) {
	if p != nil {
		f()
	}
}

// parseSize accepts plain numbers and k/m/g suffixes (binary), and -1.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	ls := strings.ToLower(s)
	for suf, m := range map[string]int64{"k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30} {
		if strings.HasSuffix(ls, suf) && len(ls) > len(suf) {
			if _, err := strconv.ParseInt(ls[:len(ls)-len(suf)], 10, 64); err == nil {
				mult = m
				ls = ls[:len(ls)-len(suf)]
				break
			}
		}
	}
	n, err := strconv.ParseInt(ls, 10, 64)
	if err != nil {
		return 0, err
	}
	return n * mult, nil
}

func readAll(f *os.File) ([]byte, error) {
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			if err.Error() == "EOF" {
				return []byte(b.String()), nil
			}
			return nil, err
		}
	}
}

// event is one line of "events" output, as runc prints it.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

func cmdEvents(fs *flag.FlagSet) func(*globalOptions, []string) error {
	var stats bool
	var interval time.Duration
	fs.BoolVar(&stats, "stats", false, "print the container's stats once and exit")
	fs.DurationVar(&interval, "interval", 5*time.Second, "interval between stats events")
	return func(g *globalOptions, args []string) error {
		if err := needArgs(args, 1, "a container id"); err != nil {
			return err
		}
		if interval <= 0 {
			return errors.New("--interval must be positive")
		}
		c, err := rt(g).Load(args[0])
		if err != nil {
			return err
		}
		enc := json.NewEncoder(os.Stdout)
		if stats {
			s, err := c.Stats()
			if err != nil {
				return err
			}
			return enc.Encode(event{Type: "stats", ID: c.ID(), Data: s})
		}
		cg, err := c.Cgroup()
		if err != nil {
			return err
		}
		oom, stop, err := cgroups.NotifyOOM(cg)
		if err != nil {
			return fmt.Errorf("watch OOM events: %w", err)
		}
		defer stop()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case _, ok := <-oom:
				if !ok {
					return nil
				}
				if err := enc.Encode(event{Type: "oom", ID: c.ID()}); err != nil {
					return err
				}
			case <-tick.C:
				if c.Status() == specs.StateStopped {
					return nil
				}
				s, err := c.Stats()
				if err != nil {
					return err
				}
				if err := enc.Encode(event{Type: "stats", ID: c.ID(), Data: s}); err != nil {
					return err
				}
			}
		}
	}
}

func cmdFeatures(fs *flag.FlagSet) func(*globalOptions, []string) error {
	return func(g *globalOptions, args []string) error {
		return printJSON(brt.Features())
	}
}
