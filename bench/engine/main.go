//go:build linux

// Command engine compares berthd's containers with Docker's on this
// machine (issue 4's performance requirements).
//
//	go run ./bench/engine [-bin bin] [-n 30] [-warmup 3] [-rounds 3] [-count 50] [-scenario run-cli-none,...]
//
// It starts, each with its own data root, exec root, socket and daemon.json
// in a work directory under -dir (default /var/tmp, see bench/images for
// why not /tmp):
//
//   - berthd from a copy of -bin in the work directory (default: `make
//     build` into it), so that a rebuild during the run changes nothing,
//     with a default bridge named bbe<random> and so an nftables table of
//     its own, berth-bbe<random>;
//   - Debian's dockerd (docker.io 20.10) with its own containerd, whose
//     default network is a bridge the bench makes (bbd<random>, on a free
//     /24 of 10.231.0.0/16) and which runs with --iptables=false
//     --ip6tables=false --ip-forward=false --ip-masq=false and a cgroup
//     parent of its own, so that it leaves the host's firewall alone. Its
//     default network therefore has no NAT or filter rules while berth's
//     has its nftables rules: the "none" scenarios compare like with like.
//
// The same busybox layer (testutil.BusyboxLayerTar) is `docker import`ed
// into both as bench/busybox:engine. Both daemons are driven by the same
// docker CLI binary with the same environment (only -H differs), and
// separately through the Engine API directly (net/http on the socket,
// API v1.41), which leaves out the CLI's own start-up.
//
// Scenarios (all by default, in this order):
//
//	cli-floor         docker version: the CLI's own start-up and a round
//	                  trip, no container (the part of every CLI figure
//	                  that no daemon can save)
//	run-cli-none      docker run --rm --network none IMG true
//	run-api-none      create, start, wait, remove of `true`, each timed
//	run-cli-default   docker run --rm IMG true (default network)
//	run-api-default   the API run on the default network
//	many-cli-none     -count `docker run -d --network none IMG sleep 1000`
//	                  processes at once; the wall time until all returned
//	                  (each returns once its container runs)
//	many-api-none     -count concurrent create+start API calls
//	many-cli-default  and many-api-default: the same on the default network
//	port-throughput   1 GiB from the host's 127.0.0.1 through a published
//	                  port to busybox nc in a container (-rounds rounds;
//	                  dockerd serves it with its userland proxy, berth
//	                  with DNAT)
//
// One-container scenarios run -warmup unmeasured then -n measured runs per
// engine, interleaved berth, docker, berth, docker...; "many" scenarios
// run one unmeasured round then -rounds measured ones. Every run or round
// starts on a quiet machine (at most 10ms of CPU used in 50ms, or after
// 2s), so that neither engine is charged the other's asynchronous
// clean-up of the run before. After each round
// of a "many" scenario, once the engine is idle (its daemons and shims
// used at most 20ms of CPU in a second), the bench records the RSS and
// PSS of berthd, or dockerd and containerd, and of every container shim
// (berth-shim; containerd-shim-runc-v2), then removes the containers.
// It prints per scenario the median and p90 of each engine and the ratio
// of medians, the memory table, and issue 4's targets, met or missed. An
// engine that fails a scenario drops out of it with its error and the
// bench goes on; the exit status is 1 if anything failed.
//
// With -berthd-log-level debug it prints, per scenario, berthd's own time
// for each kind of request (create, attach, start, wait, delete...) from
// its log. With -trace N it then runs N create, start, wait, remove runs of `true`
// (--network none) per engine under `perf record` of the scheduler's
// fork, exec and exit tracepoints and prints each engine's median time
// line: when, after the start request, each process of the daemon's tree
// (shim, runtime create/start/delete, the container's init and process,
// hooks) was exec'd and exited, and when each API answer came back.
//
// Everything it made is removed when it ends, also on error or Ctrl-C:
// containers, both daemons (SIGTERM, then a wait), containerd, the mounts
// under the work directory (berthd's netns directory among them), both
// bridges, berthd's nftables table, dockerd's cgroup parent and the work
// directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/berth-project/berth/bench/internal/pick"
)

func main() {
	var o options
	flag.IntVar(&o.runs, "n", 30, "measured runs per engine of each one-container scenario")
	flag.IntVar(&o.warmup, "warmup", 3, "unmeasured runs per engine before them")
	flag.IntVar(&o.rounds, "rounds", 3, "measured rounds per engine of each many-container scenario")
	flag.IntVar(&o.count, "count", 50, "containers started at once in a many-container round")
	only := flag.String("scenario", "", "comma-separated scenarios to run (default all: "+scenarioNames()+")")
	flag.StringVar(&o.binDir, "bin", "", "directory holding berthd, berth-shim, berth-runtime and berth-init (default: make build into the work directory)")
	flag.StringVar(&o.parent, "dir", "/var/tmp", "directory to make the work directory in")
	flag.StringVar(&o.logLevel, "berthd-log-level", "info", "berthd's --log-level; debug makes the bench print berthd's time per request and scenario from its log")
	flag.IntVar(&o.trace, "trace", 0, "after the scenarios, trace this many API runs per engine with perf (exec and exit of every process of the daemon's tree)")
	flag.DurationVar(&o.timeout, "timeout", time.Minute, "limit of one container's run (five times it for a many-container round)")
	flag.Parse()
	if flag.NArg() > 0 || o.runs < 1 || o.warmup < 0 || o.rounds < 1 || o.count < 1 || o.trace < 0 || o.timeout <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	var err error
	if o.scenarios, err = selectScenarios(*only); err != nil {
		fmt.Fprintln(os.Stderr, "bench/engine:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/engine: FAILED:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("the bench runs berthd and dockerd: run it as root")
	}
	b, err := newBench(o)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := b.cleanup(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}()
	if err := b.setup(ctx); err != nil {
		return err
	}
	all := map[string][]*result{}
	var failed []string
	var windows []window
	for _, sc := range o.scenarios {
		start := time.Now()
		results := b.runScenario(ctx, sc)
		windows = append(windows, window{sc.name, start, time.Now()})
		all[sc.name] = results
		b.printScenario(sc, results)
		for _, r := range results {
			if r.err != nil {
				failed = append(failed, sc.name+"/"+r.engine)
			}
		}
	}
	if o.logLevel == "debug" {
		if err := b.printRequests(windows); err != nil {
			fmt.Printf("berthd's request times: %v\n\n", err)
		}
	}
	if o.trace > 0 && ctx.Err() == nil {
		if err := b.trace(ctx, o.trace); err != nil {
			fmt.Printf("trace FAILED: %v\n\n", err)
			failed = append(failed, "trace")
		}
	}
	b.printMemory(all)
	b.printTargets(all)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

func scenarioName(s scenario) string { return s.name }

func scenarioNames() string { return pick.Names(allScenarios, scenarioName) }

func selectScenarios(list string) ([]scenario, error) {
	return pick.Select(allScenarios, scenarioName, list)
}
