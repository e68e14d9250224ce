package logfile

import (
	"errors"
	"log/slog"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
)

// pollInterval is how often a follow looks at the log where inotify is
// not available.
const pollInterval = 250 * time.Millisecond

// watcher wakes a follow when the log may have changed: a write, a
// rotation or a truncation of path or its rotated files. Wake-ups
// coalesce; one may come with no change.
type watcher struct {
	c       chan struct{}
	inotify bool // false: polling
	stop    func()
}

// newWatcher watches path with inotify, or polls when it cannot.
func newWatcher(l *slog.Logger, path string, pollOnly bool) *watcher {
	w := &watcher{c: make(chan struct{}, 1)}
	if !pollOnly {
		stop, err := watchInotify(path, w.wake)
		if err == nil {
			w.inotify, w.stop = true, stop
			return w
		}
		if !errors.Is(err, errdefs.ErrNotImplemented) {
			l.Warn("cannot watch the log, polling it", "path", path, "error", err)
		}
	}
	ticker := time.NewTicker(pollInterval)
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-ticker.C:
				w.wake()
			case <-quit:
				return
			}
		}
	}()
	w.stop = func() {
		ticker.Stop()
		close(quit)
		<-exited
	}
	return w
}

func (w *watcher) wake() {
	select {
	case w.c <- struct{}{}:
	default: // one is pending already
	}
}

// close stops watching.
func (w *watcher) close() { w.stop() }
