package shim

import (
	"io"
	"os"
	"sync"
	"time"
)

// Bounds of one attacher's queue. Past either, a container's attacher is
// dropped, so that the container (and its log) never waits for it; an
// exec'd process, whose output has no other reader, waits instead.
const (
	attachMaxBytes  = 1 << 20
	attachMaxChunks = 512
)

// flushTimeout bounds how long a finished stream waits for an attacher to
// take the rest of its queue.
const flushTimeout = 10 * time.Second

// exitFlushTimeout bounds how long a deleted shim waits for its attachers
// to take the rest of their queues before it exits.
const exitFlushTimeout = 2 * time.Second

// fanout copies one output stream to any number of attachers. With block
// set, write waits for attachers that are behind instead of dropping them
// (an exec'd process's output, which only its attachers read).
type fanout struct {
	block bool
	// flushing counts the attachers still writing out, across all of
	// the shim's streams (nil: not counted), so that the shim can let
	// them finish before it exits.
	flushing *sync.WaitGroup
	mu       sync.Mutex
	subs     map[*subscriber]struct{}
	closed   bool
}

func newFanout(block bool, flushing *sync.WaitGroup) *fanout {
	return &fanout{block: block, flushing: flushing, subs: map[*subscriber]struct{}{}}
}

// subscriber is one attacher: a bounded queue and the goroutine writing
// it out.
type subscriber struct {
	conn    *os.File
	mu      sync.Mutex
	cond    sync.Cond
	queue   [][]byte
	pending int
	ended   bool // no more data will come: flush, then close
	dead    bool // dropped, or its connection failed
}

// add starts copying the stream to conn, which fanout now owns, after
// header (the attach's response). It is queued with the stream, so that
// the attacher misses nothing written after its response. On a stream
// that already ended, conn gets header and EOF.
func (f *fanout) add(conn *os.File, header []byte) {
	s := &subscriber{conn: conn, queue: [][]byte{header}, pending: len(header)}
	s.cond.L = &s.mu
	if f.flushing != nil {
		f.flushing.Add(1)
		go func() {
			defer f.flushing.Done()
			s.run()
		}()
	} else {
		go s.run()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		s.finish()
		return
	}
	f.subs[s] = struct{}{}
	// The attacher sends nothing: EOF here means it went away.
	go func() {
		io.Copy(io.Discard, conn)
		f.remove(s)
	}()
}

// write queues a copy of p for every attacher. Without block it drops
// those that are gone or too far behind and never waits.
func (f *fanout) write(p []byte) {
	f.mu.Lock()
	if len(f.subs) == 0 {
		f.mu.Unlock()
		return
	}
	data := append([]byte(nil), p...)
	if !f.block {
		defer f.mu.Unlock()
		for s := range f.subs {
			if !s.offer(data, false) {
				delete(f.subs, s)
				s.drop()
			}
		}
		return
	}
	// Wait without the lock, so that attachers can come and go meanwhile;
	// there is one writer per stream, the order is kept.
	subs := make([]*subscriber, 0, len(f.subs))
	for s := range f.subs {
		subs = append(subs, s)
	}
	f.mu.Unlock()
	for _, s := range subs {
		if !s.offer(data, true) {
			f.remove(s)
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

// offer queues data; when the queue is full it fails, or with block waits.
func (s *subscriber) offer(data []byte, block bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.dead && (s.pending+len(data) > attachMaxBytes || len(s.queue) >= attachMaxChunks) {
		if !block {
			return false
		}
		s.cond.Wait()
	}
	if s.dead || s.ended {
		return false
	}
	s.queue = append(s.queue, data)
	s.pending += len(data)
	s.cond.Broadcast()
	return true
}

// run writes the queue out until the stream ended and the queue is empty,
// or the subscriber is dead.
func (s *subscriber) run() {
	defer s.conn.Close()
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.ended && !s.dead {
			s.cond.Wait()
		}
		if s.dead || len(s.queue) == 0 {
			s.mu.Unlock()
			return
		}
		data := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.mu.Unlock()

		_, err := s.conn.Write(data)

		s.mu.Lock()
		s.pending -= len(data)
		if err != nil {
			s.dead = true
		}
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

// drop closes the connection now; queued data is lost.
func (s *subscriber) drop() {
	s.mu.Lock()
	s.dead = true
	s.queue = nil
	s.cond.Broadcast()
	s.mu.Unlock()
	s.conn.Close()
}

// finish lets the queue drain (within flushTimeout) before the close.
func (s *subscriber) finish() {
	s.conn.SetWriteDeadline(time.Now().Add(flushTimeout))
	s.mu.Lock()
	s.ended = true
	s.cond.Broadcast()
	s.mu.Unlock()
}
