package docker

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"

	"github.com/berth-project/berth/internal/errdefs"
)

func TestStdWriterFraming(t *testing.T) {
	var buf bytes.Buffer
	out, errw, sys := outputWriters(&buf, true)
	if n, err := out.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("write: %d %v", n, err)
	}
	want := []byte{1, 0, 0, 0, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("frame % x, want % x", buf.Bytes(), want)
	}
	if n, err := out.Write(nil); n != 0 || err != nil || buf.Len() != len(want) {
		t.Errorf("empty write: %d %v, %d bytes", n, err, buf.Len())
	}
	errw.Write([]byte("oops\n"))
	big := bytes.Repeat([]byte("0123456789abcdef"), (3*maxFrame)/16+5)
	if n, err := out.Write(big); n != len(big) || err != nil {
		t.Fatalf("big write: %d %v", n, err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stdout.Bytes(), append([]byte("hello"), big...)) || stderr.String() != "oops\n" {
		t.Errorf("decoded stdout %d bytes, stderr %q", stdout.Len(), stderr.String())
	}
	// Stream 3 carries the daemon's errors; stdcopy turns it into an error.
	buf.Reset()
	sys.Write([]byte("Error grabbing logs: boom\n"))
	if buf.Bytes()[0] != streamSystem {
		t.Errorf("system stream byte %d", buf.Bytes()[0])
	}
	if _, err := stdcopy.StdCopy(io.Discard, io.Discard, &buf); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("system stream: %v", err)
	}
}

// TestStdWriterConcurrent checks that records written from two goroutines
// (the container's stdout and stderr copiers) never interleave.
func TestStdWriterConcurrent(t *testing.T) {
	var buf bytes.Buffer
	out, errw, _ := outputWriters(&buf, true)
	var wg sync.WaitGroup
	for _, w := range []io.Writer{out, errw} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				w.Write([]byte("0123456789"))
			}
		}()
	}
	wg.Wait()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, &buf); err != nil {
		t.Fatal(err)
	}
	if stdout.Len() != 5000 || stderr.Len() != 5000 {
		t.Errorf("stdout %d, stderr %d bytes", stdout.Len(), stderr.Len())
	}
}

func TestRawWriters(t *testing.T) {
	var buf bytes.Buffer
	out, errw, sys := outputWriters(&buf, false)
	out.Write([]byte("a"))
	errw.Write([]byte("b"))
	sys.Write([]byte("c"))
	if buf.String() != "abc" {
		t.Errorf("raw: %q", buf.String())
	}
}

func TestStreamContentType(t *testing.T) {
	for _, tc := range []struct {
		tty     bool
		version string
		want    string
	}{
		{false, "1.50", multiplexedStreamType},
		{false, "1.42", multiplexedStreamType},
		{false, "1.41", rawStreamType},
		{true, "1.50", rawStreamType},
	} {
		if got := streamContentType(tc.tty, tc.version); got != tc.want {
			t.Errorf("tty=%v %s: %s, want %s", tc.tty, tc.version, got, tc.want)
		}
	}
}

func TestParseDetachKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
	}{
		{"", []byte{16, 17}},
		{"ctrl-p,ctrl-q", []byte{16, 17}},
		{"ctrl-a,b", []byte{1, 'b'}},
		{"ctrl-@", []byte{0}},
		{"ctrl-[,ctrl-\\,ctrl-_", []byte{27, 28, 31}},
		{"x, ctrl-z", []byte{'x', 26}},
	} {
		got, err := parseDetachKeys(tc.in)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("parseDetachKeys(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"ctrl-", "ctrl-1", "abc", "ctrl-pp", "a,,b"} {
		_, err := parseDetachKeys(bad)
		if !errdefs.IsInvalidArgument(err) || err.Error() != "Invalid detach keys ("+bad+") provided" {
			t.Errorf("parseDetachKeys(%q): %v", bad, err)
		}
	}
}

// serveUnix serves h on a unix socket in a temporary directory and
// returns its path.
func serveUnix(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(l)
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
	})
	return sock
}

// TestHijack drives a hijacked echo stream the way the docker CLI does:
// it sends input right behind the request (so the server has it buffered
// before the takeover), reads the response with an HTTP reader, goes on
// raw, then closes its write side and expects the rest of the output and
// EOF.
func TestHijack(t *testing.T) {
	handlerErr := make(chan error, 1)
	sock := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.52")
		h, err := hijack(w, r, multiplexedStreamType)
		if err != nil {
			handlerErr <- err
			return
		}
		defer h.close()
		stdout, stderr := h.outputs(false)
		in, err := io.ReadAll(h.stdinReader())
		if err == nil {
			stdout.Write(in)
			stderr.Write([]byte("done"))
		}
		handlerErr <- err
	}))
	for _, upgrade := range []bool{true, false} {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		head := "POST /containers/x/attach?stream=1 HTTP/1.1\r\nHost: api\r\nContent-Type: text/plain\r\n"
		if upgrade {
			head += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
		}
		if _, err := io.WriteString(conn, head+"\r\nearly "); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		req, _ := http.NewRequest("POST", "/containers/x/attach", nil)
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus, wantType := 101, multiplexedStreamType
		if !upgrade {
			wantStatus, wantType = 200, rawStreamType
		}
		if resp.StatusCode != wantStatus || resp.Header.Get("Content-Type") != wantType || resp.Header.Get("Api-Version") != "1.52" {
			t.Errorf("upgrade=%v: %d %v", upgrade, resp.StatusCode, resp.Header)
		}
		if upgrade && (resp.Header.Get("Connection") != "Upgrade" || resp.Header.Get("Upgrade") != "tcp") {
			t.Errorf("upgrade headers: %v", resp.Header)
		}
		if _, err := io.WriteString(conn, "late"); err != nil {
			t.Fatal(err)
		}
		if err := conn.(*net.UnixConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		if _, err := stdcopy.StdCopy(&stdout, &stderr, br); err != nil {
			t.Fatal(err)
		}
		if stdout.String() != "early late" || stderr.String() != "done" {
			t.Errorf("upgrade=%v: stdout %q stderr %q", upgrade, stdout.String(), stderr.String())
		}
		select {
		case err := <-handlerErr:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("handler did not end")
		}
	}
}

// TestHijackClosedInput checks that input read after close() ends with EOF,
// not a "use of closed connection" error.
func TestHijackClosedInput(t *testing.T) {
	got := make(chan error, 1)
	sock := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, err := hijack(w, r, rawStreamType)
		if err != nil {
			got <- err
			return
		}
		errc := make(chan error, 1)
		go func() {
			_, err := io.ReadAll(h.stdinReader())
			errc <- err
		}()
		h.close()
		got <- <-errc
	}))
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /exec/x/start HTTP/1.1\r\nHost: api\r\n\r\n")
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("read after close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not end")
	}
	// The client sees the head and then EOF.
	b, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(b), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(b), "\r\n\r\n") {
		t.Errorf("response %q", b)
	}
}

func TestHijackUnsupported(t *testing.T) {
	r, _ := http.NewRequest("POST", "/x", nil)
	_, err := hijack(nonHijacker{}, r, rawStreamType)
	if !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("hijack of a writer without Hijack: %v", err)
	}
}

type nonHijacker struct{ http.ResponseWriter }

// TestHijackHangup checks that closing only the write side (end of input)
// keeps the stream, and closing the whole connection is seen as a
// hang-up.
func TestHijackHangup(t *testing.T) {
	type result struct {
		halfClosedHangup bool
		hungUp           bool
		err              error
	}
	res := make(chan result, 1)
	clientRead, checked := make(chan struct{}), make(chan struct{})
	sock := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, err := hijack(w, r, rawStreamType)
		if err != nil {
			res <- result{err: err}
			return
		}
		defer h.close()
		var out result
		if _, out.err = io.ReadAll(h.stdinReader()); out.err != nil {
			res <- out
			return
		}
		// The input ended; the client still reads.
		if _, out.err = io.WriteString(h.conn, "after eof\n"); out.err != nil {
			res <- out
			return
		}
		// By the time the client has read that, a watch that took the
		// half-close for a hang-up would have fired.
		<-clientRead
		select {
		case <-h.hangup:
			out.halfClosedHangup = true
		default:
		}
		close(checked)
		select {
		case <-h.hangup:
			out.hungUp = true
		case <-time.After(20 * time.Second):
		}
		res <- out
	}))
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /containers/x/attach HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	br := bufio.NewReader(conn)
	req, _ := http.NewRequest("POST", "/containers/x/attach", nil)
	resp, err := http.ReadResponse(br, req)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("response %v %v", resp, err)
	}
	conn.(*net.UnixConn).CloseWrite()
	line, err := br.ReadString('\n')
	if err != nil || line != "after eof\n" {
		t.Fatalf("output after half-close: %q %v", line, err)
	}
	close(clientRead)
	<-checked
	conn.Close()
	select {
	case r := <-res:
		if r.err != nil || r.halfClosedHangup || !r.hungUp {
			t.Errorf("hang-up after the half-close %v, after the close %v, error %v", r.halfClosedHangup, r.hungUp, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("handler did not end")
	}
}
