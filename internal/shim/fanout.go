package shim

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of one attacher's queue: past either, the attacher is dropped so
// that the container (and its log) never waits for it.
const (
	attachMaxBytes  = 1 << 20
	attachMaxChunks = 512
)

// flushTimeout bounds how long a finished stream waits for an attacher to
// take the rest of its queue.
const flushTimeout = 10 * time.Second

// fanout copies one output stream to any number of attachers.
type fanout struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

func newFanout() *fanout { return &fanout{subs: map[*subscriber]struct{}{}} }

// subscriber is one attacher: a queue and the goroutine writing it out.
type subscriber struct {
	conn    *os.File
	ch      chan []byte
	pending atomic.Int64
	dead    atomic.Bool
	once    sync.Once
}

// add starts copying the stream to conn, which fanout now owns, after
// header (the attach's response). It is queued with the stream, so that
// the attacher misses nothing written after its response. On a stream
// that already ended, conn gets header and EOF.
func (f *fanout) add(conn *os.File, header []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &subscriber{conn: conn, ch: make(chan []byte, attachMaxChunks)}
	s.ch <- header
	s.pending.Add(int64(len(header)))
	if f.closed {
		go s.run()
		s.finish()
		return
	}
	f.subs[s] = struct{}{}
	go s.run()
	// The attacher sends nothing: EOF here means it went away.
	go func() {
		io.Copy(io.Discard, conn)
		f.remove(s)
	}()
}

// write queues a copy of p for every attacher, dropping those that are
// gone or too far behind. It never blocks on an attacher.
func (f *fanout) write(p []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.subs) == 0 {
		return
	}
	data := append([]byte(nil), p...)
	for s := range f.subs {
		if !s.offer(data) {
			delete(f.subs, s)
			s.drop()
		}
	}
}

func (f *fanout) remove(s *subscriber) {
	f.mu.Lock()
	delete(f.subs, s)
	f.mu.Unlock()
	s.drop()
}

// close ends the stream: each attacher gets what is queued, then EOF.
func (f *fanout) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for s := range f.subs {
		delete(f.subs, s)
		s.finish()
	}
}

func (s *subscriber) offer(data []byte) bool {
	if s.dead.Load() || s.pending.Load()+int64(len(data)) > attachMaxBytes {
		return false
	}
	select {
	case s.ch <- data:
		s.pending.Add(int64(len(data)))
		return true
	default:
		return false
	}
}

// run writes the queue out until it is closed or a write fails.
func (s *subscriber) run() {
	for data := range s.ch {
		if s.dead.Load() {
			continue
		}
		if _, err := s.conn.Write(data); err != nil {
			s.dead.Store(true)
		}
		s.pending.Add(-int64(len(data)))
	}
	s.conn.Close()
}

// drop closes the connection now, queued data is lost.
func (s *subscriber) drop() {
	s.dead.Store(true)
	s.once.Do(func() {
		close(s.ch)
		s.conn.Close()
	})
}

// finish lets the queue drain (within flushTimeout) before the close.
func (s *subscriber) finish() {
	s.once.Do(func() {
		s.conn.SetWriteDeadline(time.Now().Add(flushTimeout))
		close(s.ch)
	})
}
