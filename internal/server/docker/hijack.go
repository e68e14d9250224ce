package docker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
)

// This file holds the raw streams of attach, exec start and logs: taking
// over a connection from net/http, and Docker's multiplexed framing.

// Media types of raw and multiplexed output streams.
const (
	rawStreamType         = "application/vnd.docker.raw-stream"
	multiplexedStreamType = "application/vnd.docker.multiplexed-stream"
)

// Stream numbers of the multiplexed framing.
const (
	streamStdin  byte = 0
	streamStdout byte = 1
	streamStderr byte = 2
	// streamSystem carries the daemon's own errors (logs).
	streamSystem byte = 3
)

// streamContentType is the Content-Type of an output stream: a TTY's
// output is raw; without one stdout and stderr are multiplexed, which API
// versions before 1.42 do not name.
func streamContentType(tty bool, version string) string {
	if !tty && !versionLess(version, "1.42") {
		return multiplexedStreamType
	}
	return rawStreamType
}

// stdWriter frames each Write as one record of Docker's multiplexed
// stream: an 8-byte header (the stream number, three zero bytes, the
// payload length as a big-endian uint32) and the payload. Writers of one
// connection share mu so records never interleave.
type stdWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream byte
}

// maxFrame is the largest payload of one record; longer writes are split.
const maxFrame = 1 << 20

func (s *stdWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxFrame)]
		buf := make([]byte, 8+len(chunk))
		buf[0] = s.stream
		binary.BigEndian.PutUint32(buf[4:8], uint32(len(chunk)))
		copy(buf[8:], chunk)
		s.mu.Lock()
		_, err := s.w.Write(buf)
		s.mu.Unlock()
		if err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// lockedWriter serialises writes to w under mu (a TTY's raw output).
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// outputWriters returns the stdout and stderr writers of a stream to w:
// framed when mux, else both write raw bytes. System errors go to the
// third writer (stream 3 when framed).
func outputWriters(w io.Writer, mux bool) (stdout, stderr, system io.Writer) {
	mu := &sync.Mutex{}
	if !mux {
		lw := &lockedWriter{mu: mu, w: w}
		return lw, lw, lw
	}
	return &stdWriter{mu: mu, w: w, stream: streamStdout},
		&stdWriter{mu: mu, w: w, stream: streamStderr},
		&stdWriter{mu: mu, w: w, stream: streamSystem}
}

// flushWriter flushes an HTTP response after every write, so streamed
// output reaches the client at once.
type flushWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func newFlushWriter(w http.ResponseWriter) *flushWriter {
	f, _ := w.(http.Flusher)
	return &flushWriter{w: w, f: f}
}

func (fw *flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	if err == nil && fw.f != nil {
		fw.f.Flush()
	}
	return n, err
}

// flush sends what was written so far.
func (fw *flushWriter) flush() {
	if fw.f != nil {
		fw.f.Flush()
	}
}

// hijacked is a connection taken over from net/http for a raw
// bidirectional stream (attach, exec start).
type hijacked struct {
	conn net.Conn
	// in reads what the client sends: the bytes the HTTP server had
	// already buffered, then the connection.
	in io.Reader
	// hangup is closed when the client closed the whole connection (see
	// watchHangup); stopWatch ends that watch.
	hangup    <-chan struct{}
	stopWatch func()
	// what names the stream in logs; sent counts the bytes written to it.
	what string
	sent atomic.Int64
	// head is the response head, sent once by sendHead (before the first
	// byte of the stream at the latest).
	head     []byte
	headOnce sync.Once
	headErr  error
}

// sendHead writes the response head if it has not been written yet.
func (h *hijacked) sendHead() error {
	h.headOnce.Do(func() {
		if _, err := h.conn.Write(h.head); err != nil {
			h.headErr = fmt.Errorf("%s: write response head: %w", h.what, err)
		}
	})
	return h.headErr
}

// Write writes p to the client and counts it.
func (h *hijacked) Write(p []byte) (int, error) {
	if err := h.sendHead(); err != nil {
		return 0, err
	}
	n, err := h.conn.Write(p)
	h.sent.Add(int64(n))
	return n, err
}

// hijack takes over the connection of w and writes the response head as
// Docker does: "101 UPGRADED" with the stream's content type when the
// client asked for an upgrade (Upgrade: tcp), else "200 OK" with the raw
// stream type; then the headers set so far (Server, API-Version...).
// After it returns, the caller owns the connection and must close it.
func hijack(w http.ResponseWriter, r *http.Request, contentType string) (*hijacked, error) {
	h, err := hijackQuiet(w, r, contentType)
	if err != nil {
		return nil, err
	}
	if err := h.sendHead(); err != nil {
		h.conn.Close()
		return nil, err
	}
	return h, nil
}

// hijackQuiet takes over the connection like hijack but leaves the
// response head unsent until sendHead, the first Write or close: an
// attach sends it only once the daemon registered the attach, because
// the client starts the container as soon as it reads it.
func hijackQuiet(w http.ResponseWriter, r *http.Request, contentType string) (*hijacked, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, fmt.Errorf("%s %s: the connection cannot be hijacked: %w", r.Method, r.URL.Path, errdefs.ErrNotImplemented)
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, fmt.Errorf("%s %s: hijack the connection: %w", r.Method, r.URL.Path, err)
	}
	_ = conn.SetDeadline(time.Time{})
	var head bytes.Buffer
	if _, upgrade := r.Header["Upgrade"]; upgrade {
		fmt.Fprintf(&head, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n", contentType)
	} else {
		fmt.Fprintf(&head, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n", rawStreamType)
	}
	_ = w.Header().WriteSubset(&head, map[string]bool{"Content-Type": true, "Content-Length": true, "Connection": true, "Upgrade": true})
	head.WriteString("\r\n")
	h := &hijacked{conn: conn, in: conn, what: r.Method + " " + r.URL.Path, head: head.Bytes()}
	h.hangup, h.stopWatch = watchHangup(conn)
	if n := rw.Reader.Buffered(); n > 0 {
		early, _ := rw.Reader.Peek(n)
		h.in = io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn)
	}
	return h, nil
}

// close ends the stream: the write side first, so the client reads every
// byte sent and then EOF, then the whole connection.
func (h *hijacked) close() {
	_ = h.sendHead()
	h.stopWatch()
	if cw, ok := h.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = h.conn.Close()
}

// cancelOnHangup calls cancel when the client closes the whole
// connection before ctx ends: a stream that waits (an attach before the
// container starts, a silent process) then ends instead of holding the
// connection.
func (h *hijacked) cancelOnHangup(ctx context.Context, cancel context.CancelFunc) {
	if h.hangup == nil {
		return
	}
	go func() {
		select {
		case <-h.hangup:
			cancel()
		case <-ctx.Done():
		}
	}()
}

// stdinReader is the client's input: it reports a read error of a
// connection closed by close() as EOF, which is how the input ended.
func (h *hijacked) stdinReader() io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		n, err := h.in.Read(p)
		if err != nil && errors.Is(err, net.ErrClosed) {
			err = io.EOF
		}
		return n, err
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// parseDetachKeys checks a detach key list as Docker's clients write it
// ("ctrl-p,ctrl-q", "a,ctrl-@") and returns its bytes; "" is the default
// ctrl-p ctrl-q. It lets a bad list be refused before a stream is taken
// over; the daemon applies the keys.
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return []byte{16, 17}, nil
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case len(k) == 6 && strings.HasPrefix(k, "ctrl-"):
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c == '@':
				out = append(out, 0)
			case c >= '[' && c <= '_':
				out = append(out, c-'['+27)
			default:
				return nil, badDetachKeys(s)
			}
		default:
			return nil, badDetachKeys(s)
		}
	}
	return out, nil
}

func badDetachKeys(s string) error {
	return errInvalid(fmt.Sprintf("Invalid detach keys (%s) provided", s))
}

// outputs returns the output writers of a hijacked stream: framed
// without a TTY, raw with one.
func (h *hijacked) outputs(tty bool) (stdout, stderr io.Writer) {
	o, e, _ := outputWriters(h, !tty)
	return o, e
}

// finish logs how the stream ended and writes an error that ended it into
// the stream, as Docker does (the status line went out long ago). A
// detach or the end of ctx is no error.
func (h *hijacked) finish(ctx context.Context, out io.Writer, format string, err error) {
	log.G(ctx).Debug("stream ended", "stream", h.what, "sent", h.sent.Load(), "error", err)
	if err == nil || errors.Is(err, daemon.ErrDetached) || ctx.Err() != nil {
		return
	}
	_, _ = fmt.Fprintf(out, format, errorMessage(err))
}
