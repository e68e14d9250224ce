// Command berthd is berth's daemon: it owns images (and, later, containers,
// networks and volumes) and serves the Docker Engine API on a unix socket.
// Its flags follow dockerd's; a JSON configuration file (--config-file,
// daemon.json's keys) supplies what the command line does not.
//
// This main only parses flags, wires the daemon to the API server and
// runs the process: listeners, signals (SIGTERM/SIGINT shut down, SIGHUP
// reloads the configuration file).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/server/docker"
)

// version and gitCommit are set at build time.
var (
	version   = "dev"
	gitCommit = ""
)

// defaultConfigFile is read when it exists and --config-file is not given.
const defaultConfigFile = "/etc/berth/daemon.json"

// shutdownTimeout bounds how long requests in progress may run after
// SIGTERM before they are cancelled.
const shutdownTimeout = 30 * time.Second

// options are berthd's parsed command line.
type options struct {
	cfg        daemon.Config
	configFile string
	set        map[string]bool // flags given on the command line
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// poolList is the repeatable --default-address-pool flag.
type poolList []daemon.AddressPool

func (l *poolList) String() string { return fmt.Sprint(*l) }
func (l *poolList) Set(v string) error {
	var p daemon.AddressPool
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		switch k {
		case "base":
			p.Base = val
		case "size":
			n, err := strconv.Atoi(val)
			if err != nil {
				return fmt.Errorf("invalid size %q", val)
			}
			p.Size = n
		default:
			return fmt.Errorf("unknown key %q (want base=CIDR,size=N)", k)
		}
	}
	if p.Base == "" || p.Size == 0 {
		return fmt.Errorf("want base=CIDR,size=N")
	}
	*l = append(*l, p)
	return nil
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("berthd", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: berthd [OPTIONS]\n\nA container engine daemon serving the Docker Engine API.\n\nOptions:\n")
		fs.PrintDefaults()
	}
	var hosts, insecure, mirrors stringList
	fs.Var(&hosts, "H", "daemon socket to listen on: unix:///path, tcp://host:port or fd:// (repeatable; default "+daemon.DefaultHost+")")
	fs.Var(&hosts, "host", "same as -H")
	fs.StringVar(&o.cfg.DataRoot, "data-root", daemon.DefaultDataRoot, "root directory of persistent state")
	fs.StringVar(&o.cfg.ExecRoot, "exec-root", daemon.DefaultExecRoot, "root directory of runtime state and sockets")
	fs.StringVar(&o.cfg.Group, "group", "", "group owning the unix socket (default \""+daemon.DefaultGroup+"\" if it exists, else root)")
	fs.StringVar(&o.cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.configFile, "config-file", defaultConfigFile, "daemon configuration file (JSON)")
	fs.BoolVar(&o.cfg.LiveRestore, "live-restore", true, "keep containers running while the daemon is down")
	fs.Var(&insecure, "insecure-registry", "registry (host:port or CIDR) that may be reached without TLS verification (repeatable)")
	fs.Var(&mirrors, "registry-mirror", "Docker Hub mirror (repeatable)")
	fs.StringVar(&o.cfg.StorageDriver, "storage-driver", "", "storage driver: overlay or native (default overlay when the kernel supports it)")
	fs.StringVar(&o.cfg.Bridge, "bridge", "", "Linux bridge of the default bridge network (default berth0)")
	fs.StringVar(&o.cfg.BIP, "bip", "", "gateway address and prefix of the default bridge network, e.g. 172.18.0.1/16")
	ipForward := fs.Bool("ip-forward", true, "turn on the host's IP forwarding so containers on bridges reach other networks")
	fs.IntVar(&o.cfg.MTU, "mtu", 0, "MTU of the default bridge network (default 1500)")
	var pools poolList
	fs.Var(&pools, "default-address-pool", "base=CIDR,size=N: where new networks take subnets from (repeatable)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *showVersion {
		fmt.Printf("berthd version %s\n", version)
		os.Exit(0)
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	if o.set["H"] {
		o.set["host"] = true
	}
	o.cfg.Hosts, o.cfg.InsecureRegistries, o.cfg.RegistryMirrors = hosts, insecure, mirrors
	o.cfg.DefaultAddressPools = pools
	o.cfg.IPForward = ipForward
	return o, nil
}

// loadConfig merges the configuration file into the command line; the
// default file may be missing, one named with --config-file may not.
func (o options) loadConfig() (daemon.Config, error) {
	cfg := o.cfg
	if o.configFile != "" {
		file, keys, err := daemon.LoadConfigFile(o.configFile)
		switch {
		case err == nil:
			cfg = cfg.Merge(file, keys, o.set)
		case errors.Is(err, os.ErrNotExist) && !o.set["config-file"]:
		default:
			return cfg, err
		}
	}
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = []string{daemon.DefaultHost}
	}
	return cfg, cfg.Validate()
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "berthd: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	cfg, err := o.loadConfig()
	if err != nil {
		return err
	}
	var level slog.LevelVar
	lv, _ := daemon.ParseLogLevel(cfg.LogLevel)
	level.Set(lv)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &level}))
	slog.SetDefault(logger)
	ctx := log.WithLogger(context.Background(), logger)

	// Refuse to start before touching any state if another daemon
	// answers on one of our sockets.
	for _, h := range cfg.Hosts {
		if err := checkSocketFree(h); err != nil {
			return err
		}
	}
	d, err := daemon.New(ctx, cfg)
	if err != nil {
		return err
	}
	listeners, err := listen(ctx, cfg)
	if err != nil {
		d.Close()
		return err
	}
	// Catch signals before anyone is told the daemon is up.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	srv := docker.New(d, docker.Options{Version: version, GitCommit: gitCommit})
	serveErr := make(chan error, len(listeners))
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(l); err != nil {
				serveErr <- fmt.Errorf("serve %s: %w", l.Addr(), err)
			}
		}()
	}
	logger.Info("berthd started", "version", version, "hosts", cfg.Hosts, "api-version", docker.APIVersion)
	if err := sdNotify("READY=1"); err != nil {
		logger.Warn("cannot tell the service manager berthd is ready", "error", err)
	}

	var runErr error
loop:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				_ = sdNotify("RELOADING=1")
				reload(ctx, o, d, &level)
				_ = sdNotify("READY=1")
				continue
			}
			logger.Info("shutting down", "signal", sig.String())
			break loop
		case runErr = <-serveErr:
			logger.Error("api server failed, shutting down", "error", runErr)
			break loop
		}
	}
	_ = sdNotify("STOPPING=1")
	sctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("requests cut short at shutdown", "error", err)
	}
	wg.Wait()
	if err := d.Close(); err != nil {
		return fmt.Errorf("close daemon: %w", err)
	}
	logger.Info("berthd stopped")
	return runErr
}

// reload rereads the configuration file and applies what can change while
// running: the log level and the registry settings. A bad file is logged
// and changes nothing.
func reload(ctx context.Context, o options, d *daemon.Daemon, level *slog.LevelVar) {
	cfg, err := o.loadConfig()
	if err != nil {
		log.G(ctx).Error("reload configuration: keeping the current one", "error", err)
		return
	}
	if err := d.Reload(ctx, cfg); err != nil {
		log.G(ctx).Error("reload configuration: keeping the current one", "error", err)
		return
	}
	lv, _ := daemon.ParseLogLevel(cfg.LogLevel)
	level.Set(lv)
}

// listen opens the listeners of cfg.Hosts.
func listen(ctx context.Context, cfg daemon.Config) (ls []net.Listener, err error) {
	defer func() {
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
		}
	}()
	for _, h := range cfg.Hosts {
		network, addr, err := daemon.ParseHost(h)
		if err != nil {
			return ls, err
		}
		switch network {
		case "unix":
			l, err := listenUnix(ctx, addr, cfg.Group)
			if err != nil {
				return ls, err
			}
			ls = append(ls, l)
		case "tcp":
			log.G(ctx).Warn("listening on TCP without TLS: anyone who can reach it has root on this host", "addr", addr)
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return ls, fmt.Errorf("listen on %s: %w", h, err)
			}
			ls = append(ls, l)
		case "fd":
			fl, err := activationListeners()
			if err != nil {
				return ls, err
			}
			ls = append(ls, fl...)
		}
	}
	return ls, nil
}
