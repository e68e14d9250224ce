package logfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// deadline bounds every wait of the follow tests.
const deadline = 10 * time.Second

// follower is a Read with Follow running in the background.
type follower struct {
	msgs chan Message
	errc chan error
	done chan struct{} // ReadOptions.Done
	logs *syncBuffer
}

// startFollow follows l with opts (Follow and Done set here), polling
// instead of using inotify if poll is set, and returns once what the log
// holds now is read. The read is cancelled at cleanup if still running.
func startFollow(t *testing.T, l *testLog, opts ReadOptions, poll bool) *follower {
	t.Helper()
	ctx, logs := logged()
	ctx, cancel := context.WithCancel(ctx)
	f := &follower{msgs: make(chan Message, 10000), errc: make(chan error, 1), done: make(chan struct{}), logs: logs}
	opts.Follow, opts.Done = true, f.done
	r := newReader(ctx, l.path, l.maxFiles, opts, func(m Message) error {
		f.msgs <- m
		return nil
	})
	r.pollOnly = poll
	started := make(chan struct{})
	r.followStarts = func() { close(started) }
	go func() { f.errc <- r.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-f.errc
	})
	select {
	case <-started:
	case err := <-f.errc:
		t.Fatalf("follow ended at the start: %v", err)
	case <-time.After(deadline):
		t.Fatalf("follow did not start within %v", deadline)
	}
	return f
}

// expect fails t unless the next entries are want, in order.
func (f *follower) expect(t *testing.T, want ...int) {
	t.Helper()
	for _, i := range want {
		select {
		case m := <-f.msgs:
			if got := number(t, m); got != i {
				t.Fatalf("got entry %d, want %d", got, i)
			}
		case <-time.After(deadline):
			t.Fatalf("no entry %d within %v", i, deadline)
		}
	}
}

// end closes Done, checks that the read returns nil with want as its last
// entries and nothing more, and that nothing was logged.
func (f *follower) end(t *testing.T, want ...int) {
	t.Helper()
	close(f.done)
	select {
	case err := <-f.errc:
		if err != nil {
			t.Fatalf("follow ended with %v", err)
		}
		f.errc <- nil // for the cleanup
	case <-time.After(deadline):
		t.Fatalf("follow did not end within %v of Done", deadline)
	}
	f.expect(t, want...)
	if len(f.msgs) > 0 {
		t.Fatalf("%d more entries after the end, the first %q", len(f.msgs), (<-f.msgs).Line)
	}
	if out := f.logs.String(); out != "" {
		t.Fatalf("follow logged:\n%s", out)
	}
}

// modes runs test with inotify and with polling.
func modes(t *testing.T, test func(t *testing.T, poll bool)) {
	t.Run("inotify", func(t *testing.T) { test(t, false) })
	t.Run("poll", func(t *testing.T) { test(t, true) })
}

func TestFollow(t *testing.T) {
	modes(t, func(t *testing.T, poll bool) {
		l := newTestLog(t, 3)
		l.write(0, 3)
		f := startFollow(t, l, ReadOptions{Tail: 1}, poll)
		f.expect(t, 2)
		l.write(3, 5)
		f.expect(t, 3, 4)

		l.rotate()
		l.write(5, 6)
		f.expect(t, 5)

		// An entry written in two parts is read once complete.
		s := line(stream(6), text(6), at(6))
		l.writeRaw(s[:17])
		l.writeRaw(s[17:])
		f.expect(t, 6)

		// Two rotations in a row, one into the file that is dropped.
		l.write(7, 8)
		l.rotate()
		l.write(8, 9)
		l.rotate()
		l.write(9, 10)
		f.expect(t, 7, 8, 9)

		// What is written before Done is closed is read before the end.
		l.write(10, 12)
		f.end(t, 10, 11)
	})
}

// TestFollowRotating follows a writer that rotates every few entries, one
// write per entry, from before it starts to its end: every entry exactly
// once, in order.
func TestFollowRotating(t *testing.T) {
	modes(t, func(t *testing.T, poll bool) {
		const n, every = 3000, 37
		l := newTestLog(t, n/every+2) // nothing is dropped
		f := startFollow(t, l, ReadOptions{Tail: -1}, poll)
		for i := range n {
			if i > 0 && i%every == 0 {
				l.rotate()
			}
			l.write(i, i+1)
		}
		f.end(t, seq(0, n)...)
	})
}

func TestFollowTail0(t *testing.T) {
	l := newTestLog(t, 2)
	l.write(0, 3)
	s := line(stream(3), text(3), at(3))
	l.writeRaw(s[:10]) // being written: the follow starts before it
	f := startFollow(t, l, ReadOptions{Tail: 0}, false)
	l.writeRaw(s[10:])
	l.write(4, 5)
	f.end(t, 3, 4)
}

func TestFollowSinceUntil(t *testing.T) {
	l := newTestLog(t, 2)
	l.write(0, 3)
	f := startFollow(t, l, ReadOptions{Tail: -1, Since: at(1), Until: at(5)}, false)
	f.expect(t, 1, 2)
	l.write(3, 5)
	f.expect(t, 3, 4)
	l.rotate()
	l.write(5, 8)
	f.expect(t, 5)
	// Entry 6 is past Until: the follow ends without Done.
	select {
	case err := <-f.errc:
		if err != nil {
			t.Fatalf("follow ended with %v", err)
		}
		f.errc <- nil
	case <-time.After(deadline):
		t.Fatalf("follow did not end at the until bound within %v", deadline)
	}
	if len(f.msgs) > 0 {
		t.Fatalf("entry %q past the until bound", (<-f.msgs).Line)
	}
}

func TestFollowCancel(t *testing.T) {
	l := newTestLog(t, 1)
	l.write(0, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan Message, 10)
	errc := make(chan error, 1)
	go func() {
		errc <- Read(ctx, l.path, 1, ReadOptions{Tail: -1, Follow: true}, func(m Message) error {
			got <- m
			return nil
		})
	}()
	for i := range 2 {
		select {
		case m := <-got:
			number(t, m)
		case <-time.After(deadline):
			t.Fatalf("no entry %d within %v", i, deadline)
		}
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled follow returned %v", err)
		}
	case <-time.After(deadline):
		t.Fatalf("follow did not end within %v of the cancel", deadline)
	}
}

// TestFollowTruncated follows a log kept in one file, which the writer
// truncates to rotate.
func TestFollowTruncated(t *testing.T) {
	l := newTestLog(t, 1)
	l.write(0, 5)
	f := startFollow(t, l, ReadOptions{Tail: -1}, false)
	f.expect(t, 0, 1, 2, 3, 4)
	l.rotate()
	l.write(5, 6)
	f.expect(t, 5)
	f.end(t)
}

// TestFollowCreated follows a log that does not exist yet.
func TestFollowCreated(t *testing.T) {
	l := &testLog{t: t, path: filepath.Join(t.TempDir(), "later.log"), maxFiles: 2}
	f := startFollow(t, l, ReadOptions{Tail: -1}, false)
	l.open(os.O_APPEND)
	defer l.f.Close()
	l.write(0, 2)
	f.expect(t, 0, 1)
	f.end(t)
}

// TestFollowStopped follows a log whose writer has stopped already: it is
// read to its end, and an incomplete last line is reported.
func TestFollowStopped(t *testing.T) {
	l := newTestLog(t, 2)
	l.write(0, 3)
	l.writeRaw(`{"log":"cut`)
	ctx, logs := logged()
	done := make(chan struct{})
	close(done)
	var got []int
	err := Read(ctx, l.path, 2, ReadOptions{Tail: -1, Follow: true, Done: done}, func(m Message) error {
		got = append(got, number(t, m))
		return nil
	})
	if err != nil || !slices.Equal(got, seq(0, 3)) {
		t.Fatalf("got %v, %v; want 0-2, nil", got, err)
	}
	if out := logs.String(); !strings.Contains(out, "skip incomplete last log line") {
		t.Fatalf("no warning about the incomplete line:\n%s", out)
	}
}
