package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// keptContextDirs is how many build context directories the daemon keeps
// between builds: that many builds at once reuse one each.
const keptContextDirs = 2

// contextDirPool hands out the directories build contexts are unpacked into,
// <data-root>/build-contexts/0 and /1, kept between builds: the next
// build's context is synced into one (see unpackContext), so that an
// unchanged context costs reads instead of a new tree of files. Builds
// beyond those running at once get a directory under <data-root>/tmp of
// their own, removed after. The zero value is not usable; set root and
// tmp.
type contextDirPool struct {
	root, tmp string
	mu        sync.Mutex
	busy      [keptContextDirs]bool
}

// unpack unpacks the context tar r into a directory and returns it with
// the function that gives it back once the build is done with it. On
// error nothing is left behind.
func (p *contextDirPool) unpack(ctx context.Context, r io.Reader) (dir string, release func(), err error) {
	slot := p.take()
	if slot < 0 {
		dir, err := extractContext(ctx, p.tmp, r)
		if err != nil {
			return "", nil, err
		}
		return dir, func() { os.RemoveAll(dir) }, nil
	}
	kept := filepath.Join(p.root, strconv.Itoa(slot))
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(kept)
			p.give(slot)
		}
	}()
	if err := os.MkdirAll(p.root, 0o700); err != nil {
		return "", nil, fmt.Errorf("build context: %w", err)
	}
	reused := false
	if err := os.Mkdir(kept, 0o700); errors.Is(err, fs.ErrExist) {
		reused = true
	} else if err != nil {
		return "", nil, fmt.Errorf("build context: %w", err)
	}
	if err := unpackContext(ctx, kept, reused, r); err != nil {
		return "", nil, err
	}
	keep = true
	return kept, func() { p.give(slot) }, nil
}

// take claims a free kept directory's number, or returns -1.
func (p *contextDirPool) take() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, busy := range p.busy {
		if !busy {
			p.busy[i] = true
			return i
		}
	}
	return -1
}

// give frees the kept directory number slot.
func (p *contextDirPool) give(slot int) {
	p.mu.Lock()
	p.busy[slot] = false
	p.mu.Unlock()
}

// prune removes the kept directories no build is using.
func (p *contextDirPool) prune() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for i, busy := range p.busy {
		if !busy {
			errs = append(errs, os.RemoveAll(filepath.Join(p.root, strconv.Itoa(i))))
		}
	}
	return errors.Join(errs...)
}
