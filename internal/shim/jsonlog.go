package shim

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/berth-project/berth/internal/errdefs"
)

// maxLogLine is where Docker's json-file driver splits a line that has no
// newline yet: each 16 KiB piece becomes an entry of its own, without "\n".
const maxLogLine = 16 << 10

// jsonLog writes a container's output in Docker's json-file format, one
// {"log":...,"stream":...,"time":...} object per line, rotating like
// Docker's max-size and max-file options.
type jsonLog struct {
	mu      sync.Mutex
	path    string
	maxSize int64 // rotate once the file reaches it; 0 never
	maxFile int   // files kept, the current one included (at least 1)
	f       *os.File
	size    int64
	buf     []byte
	failed  bool // a write failed: reported once
}

// openJSONLog opens (appends to) the log at path.
func openJSONLog(path string, maxSize int64, maxFile int) (*jsonLog, error) {
	if maxSize < 0 {
		return nil, fmt.Errorf("log max size %d is negative: %w", maxSize, errdefs.ErrInvalidArgument)
	}
	if maxFile < 1 {
		maxFile = 1
	}
	l := &jsonLog{path: path, maxSize: maxSize, maxFile: maxFile}
	if err := l.open(0); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *jsonLog) open(flag int) error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|flag, 0o640)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log: %w", err)
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// write appends one entry; line keeps its "\n" if it has one. Errors are
// returned once and then ignored: a full disk must not stop the container.
func (l *jsonLog) write(stream string, line []byte, t time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	l.buf = appendEntry(l.buf[:0], stream, line, t)
	n, err := l.f.Write(l.buf)
	l.size += int64(n)
	if err == nil && l.maxSize > 0 && l.size >= l.maxSize {
		err = l.rotate()
	}
	if err != nil && !l.failed {
		l.failed = true
		return fmt.Errorf("write log %s: %w", l.path, err)
	}
	return nil
}

// rotate shifts path.N-1 to path.N ... path to path.1 and starts a new
// file; with one file it truncates it, as Docker does.
func (l *jsonLog) rotate() error {
	if err := l.f.Close(); err != nil {
		return err
	}
	l.f = nil
	if l.maxFile < 2 {
		return l.open(os.O_TRUNC)
	}
	name := func(i int) string { return l.path + "." + strconv.Itoa(i) }
	if err := os.Remove(name(l.maxFile - 1)); err != nil && !os.IsNotExist(err) {
		return err
	}
	for i := l.maxFile - 2; i >= 1; i-- {
		if err := os.Rename(name(i), name(i+1)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if err := os.Rename(l.path, name(1)); err != nil {
		return err
	}
	return l.open(os.O_TRUNC)
}

func (l *jsonLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// appendEntry appends one json-file line to b.
func appendEntry(b []byte, stream string, line []byte, t time.Time) []byte {
	b = append(b, `{"log":`...)
	b = appendJSONString(b, line)
	b = append(b, `,"stream":`...)
	b = appendJSONString(b, []byte(stream))
	b = append(b, `,"time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping like encoding/json
// (invalid UTF-8 becomes U+FFFD).
func appendJSONString(b, s []byte) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// lineSplitter cuts a stream into log entries: each line with its "\n",
// a line longer than maxLogLine in pieces of maxLogLine, and what is left
// at the end as a last piece without "\n".
type lineSplitter struct {
	stream  string
	pending []byte
	emit    func(stream string, line []byte)
}

func newLineSplitter(stream string, emit func(string, []byte)) *lineSplitter {
	return &lineSplitter{stream: stream, pending: make([]byte, 0, maxLogLine), emit: emit}
}

// write consumes p (it does not keep it).
func (s *lineSplitter) write(p []byte) {
	for len(p) > 0 {
		i := indexNewline(p)
		if i >= 0 && len(s.pending)+i+1 <= maxLogLine {
			if len(s.pending) == 0 {
				s.emit(s.stream, p[:i+1])
			} else {
				s.pending = append(s.pending, p[:i+1]...)
				s.emit(s.stream, s.pending)
				s.pending = s.pending[:0]
			}
			p = p[i+1:]
			continue
		}
		// No newline within reach: fill the pending piece.
		n := min(maxLogLine-len(s.pending), len(p))
		s.pending = append(s.pending, p[:n]...)
		p = p[n:]
		if len(s.pending) == maxLogLine {
			s.emit(s.stream, s.pending)
			s.pending = s.pending[:0]
		}
	}
}

// flush emits what is pending, without a newline.
func (s *lineSplitter) flush() {
	if len(s.pending) > 0 {
		s.emit(s.stream, s.pending)
		s.pending = s.pending[:0]
	}
}

func indexNewline(p []byte) int {
	for i, c := range p {
		if c == '\n' {
			return i
		}
	}
	return -1
}

// ParseSize parses a log size like Docker's --log-opt max-size: a number
// of bytes with an optional k, m or g suffix (powers of 1024, "b" allowed
// after them).
func ParseSize(s string) (int64, error) {
	str := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "b")
	mult := int64(1)
	if n := len(str); n > 0 {
		switch str[n-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		}
		if mult > 1 {
			str = str[:n-1]
		}
	}
	v, err := strconv.ParseInt(str, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes with an optional k, m or g suffix: %w", s, errdefs.ErrInvalidArgument)
	}
	return v * mult, nil
}
