package shim

import (
	"io"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// socketPair returns two connected, pollable sockets.
func socketPair(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// A stalled attacher is dropped without ever blocking the stream; a live
// attacher gets every byte.
func TestFanoutDropsStalledAttacher(t *testing.T) {
	f := newFanout(false, nil)
	slowConn, slowPeer := socketPair(t)
	fastConn, fastPeer := socketPair(t)
	f.add(slowConn, []byte("H"))
	f.add(fastConn, []byte("H"))
	var fastTotal atomic.Int64
	progress := make(chan struct{}, 1)
	fastDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := fastPeer.Read(buf)
			fastTotal.Add(int64(n))
			select {
			case progress <- struct{}{}:
			default:
			}
			if err != nil {
				fastDone <- err
				return
			}
		}
	}()
	chunk := make([]byte, 32<<10)
	const chunks = 96 // 3 MiB, three times an attacher's bound
	for i := range chunks {
		t0 := time.Now()
		f.write(chunk)
		if d := time.Since(t0); d > time.Second {
			t.Fatalf("write %d took %v: it waited for an attacher", i, d)
		}
		// Pace the stream to the live attacher, never to the stalled one.
		want := int64(1 + (i+1)*len(chunk))
		deadline := time.After(10 * time.Second)
		for fastTotal.Load() < want {
			select {
			case <-progress:
			case <-deadline:
				t.Fatalf("live attacher stuck at %d bytes, want %d", fastTotal.Load(), want)
			}
		}
	}
	f.mu.Lock()
	n := len(f.subs)
	f.mu.Unlock()
	if n != 1 {
		t.Errorf("%d attachers left, want only the live one", n)
	}
	f.close()
	if err := <-fastDone; err != io.EOF {
		t.Errorf("live attacher ended with %v, want EOF", err)
	}
	if got, want := fastTotal.Load(), int64(1+chunks*len(chunk)); got != want {
		t.Errorf("live attacher got %d bytes, want %d", got, want)
	}
	slowN, err := io.Copy(io.Discard, slowPeer)
	if err != nil {
		t.Fatalf("stalled attacher's stream: %v", err)
	}
	if slowN >= int64(chunks*len(chunk)) {
		t.Errorf("stalled attacher received %d bytes, want less than all", slowN)
	}
	// An attacher that comes after the end gets its header and EOF.
	lateConn, latePeer := socketPair(t)
	f.add(lateConn, []byte("H"))
	if data, err := io.ReadAll(latePeer); err != nil || string(data) != "H" {
		t.Errorf("late attacher read %q, %v; want the header and EOF", data, err)
	}
}

// A blocking fanout (an exec'd process's output) waits for a slow
// attacher and loses nothing; an attacher that goes away releases it.
func TestFanoutBlocking(t *testing.T) {
	f := newFanout(true, nil)
	conn, peer := socketPair(t)
	f.add(conn, []byte("H"))
	chunk := make([]byte, 32<<10)
	const chunks = 96
	wrote := make(chan struct{})
	go func() {
		for range chunks {
			f.write(chunk)
		}
		f.close()
		close(wrote)
	}()
	// All of it arrives: three times the queue's bound, so the writer
	// must have waited for the reader.
	n, err := io.Copy(io.Discard, peer)
	if err != nil || n != int64(1+chunks*len(chunk)) {
		t.Fatalf("attacher read %d bytes (%v), want all %d", n, err, 1+chunks*len(chunk))
	}
	<-wrote

	// An attacher that hangs up does not hold the writer.
	f = newFanout(true, nil)
	conn, peer = socketPair(t)
	f.add(conn, []byte("H"))
	peer.Close()
	done := make(chan struct{})
	go func() {
		for range chunks {
			f.write(chunk)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writer held by an attacher that went away")
	}
}
