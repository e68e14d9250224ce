package testutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// cache is this process' cache directory, $TMPDIR/berth-testutil/<pid>,
// and what has been built in it.
var cache struct {
	mu       sync.Mutex
	dir      string
	runtime  string // built berth-runtime binary
	binaries string // directory of built berth-runtime, berth-shim, berth-init
	template string // template rootfs
}

// cacheBase is the parent of every process' cache directory.
func cacheBase() string {
	return filepath.Join(os.TempDir(), "berth-testutil")
}

// cached returns *field, first setting it with build(cache dir) if it is
// empty. A failed build is retried by the next call.
func cached(field *string, build func(dir string) (string, error)) (string, error) {
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if *field != "" {
		return *field, nil
	}
	if cache.dir == "" {
		base := cacheBase()
		removeStaleCaches(base)
		dir := filepath.Join(base, strconv.Itoa(os.Getpid()))
		if err := os.RemoveAll(dir); err != nil {
			return "", fmt.Errorf("make cache directory: %w", err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("make cache directory: %w", err)
		}
		cache.dir = dir
	}
	p, err := build(cache.dir)
	if err != nil {
		return "", err
	}
	*field = p
	return p, nil
}

// CleanupCache removes this process' cache directory
// ($TMPDIR/berth-testutil/<pid>: the berth-runtime built by RuntimeBinary
// and BusyboxRootfs' template). A program calls it before exiting, a test
// package may call it from TestMain; otherwise the next process that uses
// the cache removes the directories of processes that have exited. Later
// calls to RuntimeBinary or BusyboxRootfs build the cache again.
func CleanupCache() error {
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if cache.dir == "" {
		return nil
	}
	if err := os.RemoveAll(cache.dir); err != nil {
		return fmt.Errorf("remove cache directory: %w", err)
	}
	os.Remove(cacheBase()) // only if empty
	cache.dir, cache.runtime, cache.template = "", "", ""
	return nil
}

// removeStaleCaches removes the cache directories under base whose process
// has exited.
func removeStaleCaches(base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(filepath.Join(base, e.Name()))
		}
	}
}
