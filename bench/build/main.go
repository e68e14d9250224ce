//go:build linux

// Command build compares berthd's Dockerfile builds with the classic
// builder of Debian's dockerd on this machine (issue 7's performance
// requirement).
//
//	go run ./bench/build [-bin bin] [-n 5] [-warmup 1] [-files 300] [-scenario cold,warm,touch]
//
// It starts, in a work directory under -dir (default /var/tmp), berthd
// (from a copy of -bin, default: `make build` into the work directory;
// its default bridge bbb<random> and nftables table berth-bbb<random> are
// its own) and Debian's dockerd (docker.io 20.10, its own containerd)
// with --bridge=none and no iptables, forwarding or masquerading, so it
// makes nothing on the host's network. The busybox layer
// (testutil.BusyboxLayerTar) is `docker import`ed into both as
// bench/busybox:build. Both are driven by the same docker CLI binary with
// the same environment and arguments, only -H differs:
//
//	DOCKER_BUILDKIT=0 docker -H ... build --network none --force-rm -t bench/build:ref --iidfile F CONTEXT
//
// berth runs RUN steps without a network, so docker's run with --network
// none too. Neither daemon pulls: the base is local and --pull is not
// given. The context is generated into the work directory, the same on
// every run: a multi-stage Dockerfile (a base stage FROM the busybox
// image with two RUN steps making 2000 and 1000 small files and a COPY of
// -files context files of 1-8 KiB in nested directories, a final stage
// with ENV, WORKDIR, three COPY --from=base and CMD). Before measuring,
// each engine builds it once and runs the image to check its content.
//
// Scenarios (all by default, in this order):
//
//	cold   every step built: before each round the engine's images and
//	       build cache are removed (image prune -a, builder prune -a; for
//	       the classic builder the intermediate images are the cache)
//	       and the base is imported again, outside the timing
//	warm   the same build again with nothing changed: every step cached
//	       (checked: the image ID does not change)
//	touch  one context file rewritten before the round: the base stage's
//	       COPY and the final stage's COPY --from of it are built again
//
// Each scenario runs -warmup unmeasured rounds then -n measured ones,
// berth then docker in each round, with sync(2) before each build. It
// prints per scenario the median and p90 of each engine and the ratio of
// medians, then issue 7's targets (cold and warm each at most half of
// docker's time), met or missed. An engine that fails a scenario drops
// out of it with its error and the bench goes on; the exit status is 1 if
// anything failed.
//
// Everything it made is removed when it ends, also on error or Ctrl-C:
// containers, images, both daemons and dockerd's containerd, the mounts
// under the work directory, berthd's bridge and nftables table, dockerd's
// cgroup parent and the work directory.
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

// options are the command line's settings.
type options struct {
	runs, warmup, files int
	scenarios           []scenario
	binDir, parent      string
	timeout             time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.runs, "n", 5, "measured rounds per engine of each scenario")
	flag.IntVar(&o.warmup, "warmup", 1, "unmeasured rounds per engine before them")
	flag.IntVar(&o.files, "files", 300, "source files in the generated context")
	only := flag.String("scenario", "", "comma-separated scenarios to run (default all: "+pick.Names(allScenarios, scenarioName)+")")
	flag.StringVar(&o.binDir, "bin", "", "directory holding berthd, berth-shim, berth-runtime and berth-init (default: make build into the work directory)")
	flag.StringVar(&o.parent, "dir", "/var/tmp", "directory to make the work directory in")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "limit of one build")
	flag.Parse()
	if flag.NArg() > 0 || o.runs < 1 || o.warmup < 0 || o.files < 1 || o.timeout <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	var err error
	if o.scenarios, err = pick.Select(allScenarios, scenarioName, *only); err != nil {
		fmt.Fprintln(os.Stderr, "bench/build:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/build: FAILED:", err)
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
	for _, sc := range o.scenarios {
		results := b.runScenario(ctx, sc)
		all[sc.name] = results
		b.printScenario(sc, results)
		for _, r := range results {
			if r.err != nil {
				failed = append(failed, sc.name+"/"+r.engine)
			}
		}
	}
	printTargets(all)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

func scenarioName(s scenario) string { return s.name }
