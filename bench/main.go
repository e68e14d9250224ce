//go:build linux

// Command bench compares berth-runtime with runc and crun on this machine.
//
//	go run ./bench -runtime bin/berth-runtime [-n 50] [-warmup 5] [-scenario run-true]
//
// Each scenario runs every runtime in one process, interleaved in rounds
// (berth, runc, crun, then runc, crun, berth, ...: each round starts with the
// next runtime) after a few warm-up rounds, so that the machine's state and
// the previous container's teardown weigh equally on all of them. It prints, per scenario
// and runtime, the median and 90th percentile wall time of one operation
// and the ratio of medians to runc's (below 1 is faster than runc). A
// reference runtime that cannot run here (not installed, or crun on a hybrid
// cgroup host) is shown as n/a with the reason; any failure of berth-runtime,
// or of a reference that passed its first run, stops the bench with the
// runtime's stderr. Everything it makes (bundles, state roots, containers)
// is removed before it exits.
//
// Scenarios:
//
//	run-true  <rt> --root <root> run --bundle <bundle> <id> of a busybox
//	          bundle whose process is `true` (examplespec.New, no terminal)
//	run-true-docker-profile
//	          the same with Docker's default seccomp profile (oci), which
//	          every container of a daemon carries
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/bench/internal/pick"
	"github.com/berth-project/berth/internal/oci"
	"github.com/berth-project/berth/internal/testutil"
)

// scenario is one measured operation.
type scenario struct {
	name string
	doc  string
	// prepare makes what the operation needs for one runtime, once.
	prepare func(b *bench, rt *runner) error
	// run performs the operation once as the i-th run of rt and returns its
	// wall time.
	run func(ctx context.Context, b *bench, rt *runner, i int) (time.Duration, error)
}

var scenarios = []scenario{
	{
		name: "run-true",
		doc:  "run --bundle of a busybox bundle running `true`",
		prepare: func(b *bench, rt *runner) error {
			return rt.makeBundle(b, "run-true", portableVersion)
		},
		run: func(ctx context.Context, b *bench, rt *runner, i int) (time.Duration, error) {
			id := b.containerID(rt, "run-true", i)
			return rt.timed(ctx, "run", "--bundle", rt.bundles["run-true"], id)
		},
	},
	{
		name: "run-true-docker-profile",
		doc:  "run --bundle of the same bundle with Docker's default seccomp profile, as every container of a daemon has",
		prepare: func(b *bench, rt *runner) error {
			return rt.makeBundle(b, "run-true-docker-profile", func(s *specs.Spec) {
				portableVersion(s)
				s.Linux.Seccomp = oci.DefaultSeccompProfile(oci.DefaultCapabilities())
			})
		},
		run: func(ctx context.Context, b *bench, rt *runner, i int) (time.Duration, error) {
			id := b.containerID(rt, "run-true-docker-profile", i)
			return rt.timed(ctx, "run", "--bundle", rt.bundles["run-true-docker-profile"], id)
		},
	},
}

// portableVersion sets the bundle's ociVersion to one that every reference
// accepts: crun before 1.9 refuses any ociVersion but 1.0.x ("unknown version
// specified"). The version is a label; the config is the same.
func portableVersion(s *specs.Spec) {
	s.Version = "1.0.2"
}

// bench holds the options and the work directory of one bench run.
type bench struct {
	n, warmup int
	dir       string // everything the bench creates lives here
	idPrefix  string // prefix of every container id
}

// containerID returns the id of rt's i-th run of scenario; i < 0 is the
// first, checking run.
func (b *bench) containerID(rt *runner, scenario string, i int) string {
	if i < 0 {
		return fmt.Sprintf("%s%s-%s-check", b.idPrefix, rt.name, scenario)
	}
	return fmt.Sprintf("%s%s-%s-%d", b.idPrefix, rt.name, scenario, i)
}

func main() {
	berthPath := flag.String("runtime", "", "path of the berth-runtime binary to measure (required)")
	runcPath := flag.String("runc", "runc", "runc binary (name in PATH or path)")
	crunPath := flag.String("crun", "crun", "crun binary (name in PATH or path)")
	n := flag.Int("n", 50, "measured runs per runtime and scenario")
	warmup := flag.Int("warmup", 5, "unmeasured warm-up rounds per scenario")
	only := flag.String("scenario", "", "comma-separated scenarios to run (default all: "+scenarioNames()+")")
	crunHybrid := flag.Bool("crun-hide-unified", false,
		"on a hybrid cgroup host, run crun in a private mount namespace without /sys/fs/cgroup/unified, "+
			"which crun 1.x refuses to use (it then sees a cgroup v1 host)")
	flag.Parse()
	if *berthPath == "" || flag.NArg() > 0 || *n < 1 || *warmup < 0 {
		flag.Usage()
		os.Exit(2)
	}
	selected, err := selectScenarios(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, *berthPath, *runcPath, *crunPath, *n, *warmup, *crunHybrid, selected)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: FAILED:", err)
		os.Exit(1)
	}
}

func scenarioName(s scenario) string { return s.name }

func scenarioNames() string { return pick.Names(scenarios, scenarioName) }

func selectScenarios(list string) ([]scenario, error) {
	return pick.Select(scenarios, scenarioName, list)
}

func run(ctx context.Context, berthPath, runcPath, crunPath string, n, warmup int, crunHybrid bool, selected []scenario) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("the bench runs containers as root: run it as root")
	}
	berthPath, err = exec.LookPath(berthPath)
	if err != nil {
		return fmt.Errorf("berth runtime: %w", err)
	}
	dir, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return fmt.Errorf("make work directory: %w", err)
	}
	b := &bench{n: n, warmup: warmup, dir: dir, idPrefix: fmt.Sprintf("berth-bench-%d-", os.Getpid())}

	// berth is the subject; runc is the baseline of the ratios.
	rts := []*runner{
		newRunner("berth", berthPath, true),
		newRunner("runc", runcPath, false),
		newRunner("crun", crunPath, false),
	}
	defer func() {
		if cerr := b.cleanup(rts); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	for _, rt := range rts {
		if err := rt.init(b); err != nil {
			return err
		}
	}
	if crunHybrid && cgroupMode() == "hybrid" {
		if err := rts[2].useHiddenUnified(); err != nil {
			return err
		}
	}

	printHeader(rts, n, warmup)
	for _, sc := range selected {
		if err := runScenario(ctx, b, sc, rts); err != nil {
			return fmt.Errorf("scenario %s: %w", sc.name, err)
		}
	}
	return nil
}

// runScenario prepares sc for every runtime, checks each with one run, then
// runs the warm-up and measured rounds interleaved and prints the results.
func runScenario(ctx context.Context, b *bench, sc scenario, rts []*runner) error {
	var active []*runner
	results := map[*runner][]time.Duration{}
	for _, rt := range rts {
		if rt.unavailable != "" {
			continue
		}
		err := sc.prepare(b, rt)
		if err == nil {
			_, err = sc.run(ctx, b, rt, -1)
		}
		if err != nil {
			if rt.subject || ctx.Err() != nil {
				return err
			}
			rt.unavailable = unavailableReason(err)
			continue
		}
		active = append(active, rt)
	}
	// Each round starts with the next runtime, so that each runs equally
	// often in each position: a run is slowed by the asynchronous teardown
	// of the previous container (namespaces, cgroups), whose cost depends
	// on the runtime that ran it.
	for round := 0; round < b.warmup+b.n; round++ {
		for k := range active {
			rt := active[(round+k)%len(active)]
			d, err := sc.run(ctx, b, rt, round)
			if err != nil {
				return err
			}
			if round >= b.warmup {
				results[rt] = append(results[rt], d)
			}
		}
	}
	printResults(sc, rts, results)
	return nil
}

// cleanup deletes every container left in the runtimes' state roots, removes
// the work directory and the testutil cache, and reports leaks.
func (b *bench) cleanup(rts []*runner) error {
	var errs []error
	for _, rt := range rts {
		if err := rt.deleteAll(); err != nil {
			errs = append(errs, err)
		}
		rt.close()
	}
	if err := os.RemoveAll(b.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove work directory: %w", err))
	}
	if err := testutil.CleanupCache(); err != nil {
		errs = append(errs, err)
	}
	leaks, err := testutil.Leaks(b.idPrefix, b.dir)
	if err != nil {
		errs = append(errs, err)
	}
	if len(leaks) > 0 {
		errs = append(errs, fmt.Errorf("left behind:\n\t%s", strings.Join(leaks, "\n\t")))
	}
	return errors.Join(errs...)
}

// unavailableReason says briefly why a reference runtime failed its checking
// run: the first line of its stderr.
func unavailableReason(err error) string {
	var re *runError
	if !errors.As(err, &re) || re.stderr == "" {
		return firstLine(err.Error())
	}
	reason := firstLine(re.stderr)
	if strings.Contains(reason, "hybrid mode not supported") {
		reason += " (no crun flag avoids this check; try -crun-hide-unified)"
	}
	return reason
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
