package logfile

import (
	"log/slog"
	"path/filepath"
	"testing"
)

// TestWatcherUsesInotify makes sure the follow tests' inotify runs really
// use inotify, not the polling fallback.
func TestWatcherUsesInotify(t *testing.T) {
	w := newWatcher(slog.Default(), filepath.Join(t.TempDir(), "x.log"), false)
	defer w.close()
	if !w.inotify {
		t.Fatal("watcher fell back to polling")
	}
}
