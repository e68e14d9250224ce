//go:build linux

// Command images compares berth's image operations with Docker's on this
// machine (issue 3's performance requirement).
//
//	go run ./bench/images [-n 5] [-scenario pull-200mb,...] [-dir /var/tmp] [-cpuprofile berth.pprof]
//
// It starts a docker-registry on a free loopback port and a reference
// dockerd (Debian's docker.io, 20.10) of its own: data root, exec root,
// socket and config in a temporary directory, its own containerd, no
// bridge and no iptables, forwarding or masquerading (it leaves the host
// network alone). It generates the images deterministically and pushes them
// to the registry, then runs each scenario in rounds: one unmeasured
// warm-up round, then n measured rounds, each round starting with the next
// implementation, so that the page cache, the registry and the previous
// run's writeback weigh equally on all of them. Before every measured
// operation it syncs the file systems, outside the timing. It prints per
// scenario and implementation the median and 90th percentile wall time,
// the median CPU time (user+system of the processes doing the work:
// berth in this process; dockerd and the docker CLI; the floor's pipeline)
// and the ratio of medians to docker's. Everything it made (registry,
// dockerd, mounts, data roots) is removed when it ends, also on error or
// Ctrl-C.
//
// Scenarios:
//
//	pull-200mb      pull of a one-layer image of about 200 MB unpacked
//	                (about 4000 files of mixed compressibility): berth's
//	                image.Service.Pull into a fresh data root; `docker pull`
//	                (rmi and prune between runs); and the floor,
//	                `curl <blob> | gunzip | tar -x` into a fresh directory.
//	pull-10-layers  pull of a 10-layer image (about 20 MB unpacked per
//	                layer): berth and docker as above.
//	save-10-layers  Service.Save vs `docker save -o` of that image to a file.
//	load-10-layers  Service.Load into a fresh data root vs `docker load -i`
//	                (image removed between runs), both from the archive
//	                `docker save` wrote.
//
// Every berth data root, the floor's directories and docker's data root
// are on the same file system, in one work directory under -dir. Its
// default is /var/tmp, not /tmp: on an ext4 without a journal, creating a
// file scans the inodes of its block group deleted in the last minute, and
// a /tmp that test suites fill and empty all the time makes every create
// in it cost about half a millisecond (measured here: 4000 empty files in
// 2.2s under /tmp, 0.08s under /var/tmp), which would hide what the
// implementations themselves cost. For the same reason the bench's own
// clean-up between runs must not slow the next run: the work directory and
// docker's overlay2 directory get chattr +T, so that each data root, floor
// directory and docker layer directory lands in a block group of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/berth-project/berth/bench/internal/pick"
	"github.com/berth-project/berth/bench/internal/workdir"
)

func main() {
	n := flag.Int("n", 0, "measured rounds per scenario (default: each scenario's own, 5 or 7)")
	only := flag.String("scenario", "", "comma-separated scenarios to run (default all: "+scenarioNames()+")")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measured rounds (berth runs in this process) to this file")
	parent := flag.String("dir", "/var/tmp", "directory to make the work directory in (the data roots, on one file system)")
	flag.Parse()
	if flag.NArg() > 0 || *n < 0 {
		flag.Usage()
		os.Exit(2)
	}
	selected, err := selectScenarios(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/images:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, *n, *parent, *cpuprofile, selected)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/images: FAILED:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n int, parent, cpuprofile string, selected []scenario) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("the bench mounts overlays and runs dockerd: run it as root")
	}
	dir, err := os.MkdirTemp(parent, "bbi-")
	if err != nil {
		return fmt.Errorf("make work directory: %w", err)
	}
	workdir.SpreadChildren(dir)
	b := &bench{dir: dir, n: n}
	defer func() {
		if cerr := b.cleanup(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}()
	if err := b.setup(ctx, selected); err != nil {
		return err
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for _, sc := range selected {
		if err := b.runScenario(ctx, sc); err != nil {
			return fmt.Errorf("scenario %s: %w", sc.name, err)
		}
	}
	return nil
}

func scenarioName(s scenario) string { return s.name }

func scenarioNames() string { return pick.Names(scenarios, scenarioName) }

func selectScenarios(list string) ([]scenario, error) {
	return pick.Select(scenarios, scenarioName, list)
}
