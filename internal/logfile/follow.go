package logfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// follow reads what is written after the start, from cur (the newest file
// read so far, or nil), until Done is closed or ctx ends. Each round reads
// cur to its end, then any files that replaced it, then waits for the
// watcher to report a change.
func (r *reader) follow(ctx context.Context, w *watcher, cur *logFile) error {
	for {
		// Looked at before reading: what was written before Done closed
		// is read in this round.
		stopped := isClosed(r.opts.Done)
		if err := r.catchUp(ctx, &cur); err != nil {
			return err
		}
		if stopped {
			if cur != nil {
				r.done(cur)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.c:
		case <-r.opts.Done:
		}
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// catchUp reads *cur to its end and, if the log was rotated away from it,
// the files newer than it in order, leaving *cur at the newest.
func (r *reader) catchUp(ctx context.Context, cur **logFile) error {
	for {
		if lf := *cur; lf != nil {
			if err := r.checkTruncated(lf); err != nil {
				return err
			}
			if err := r.drain(ctx, lf); err != nil {
				return err
			}
			current, err := r.isCurrent(lf)
			if err != nil || current {
				return err
			}
		}
		newer, err := r.openNewer(*cur)
		if err != nil {
			return err
		}
		if len(newer) == 0 {
			// Between the rename and the new file: the create will wake us.
			return nil
		}
		if lf := *cur; lf != nil {
			// Renamed: the writer closed it before, so this end is final.
			if err := r.drain(ctx, lf); err != nil {
				return err
			}
			r.done(lf)
		}
		for _, lf := range newer[:len(newer)-1] {
			if err := r.drain(ctx, lf); err != nil {
				return err
			}
			r.done(lf)
		}
		*cur = newer[len(newer)-1]
	}
}

// isCurrent reports whether lf is still the file at path.
func (r *reader) isCurrent(lf *logFile) (bool, error) {
	fi, err := os.Stat(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("follow log: %w", err)
	}
	return os.SameFile(fi, lf.id), nil
}

// checkTruncated starts lf over when it became shorter than what was read
// of it: a writer keeping a single file truncates it to rotate. Entries
// written between the last read and the truncation are lost, and a file
// that grew back past the offset before this look is not noticed.
func (r *reader) checkTruncated(lf *logFile) error {
	fi, err := lf.f.Stat()
	if err != nil {
		return fmt.Errorf("follow log: %w", err)
	}
	if fi.Size() < lf.off {
		r.log.Debug("log truncated, reading it from the start", "path", lf.f.Name())
		lf.off, lf.buf, lf.skipping = 0, lf.buf[:0], false
	}
	return nil
}
