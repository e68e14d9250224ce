// Package logfile reads the json-file container logs that berth-shim
// writes (Docker's json-file format, with rotated files path.1 ... path.N).
//
// Each line of a log file is one entry:
//
//	{"log":"text\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}
//
// The writer appends to path; when it rotates it closes path, shifts
// path.N-1 ... path.1 one number up (the oldest falls off), renames path to
// path.1 and creates a new path. With a single file it truncates path
// instead. Read follows the files by identity (device and inode), not by
// name, so that a rotation while it reads neither loses nor repeats an
// entry: a file whose name changed is read to its end before the files
// that replaced it.
package logfile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/berth-project/berth/internal/log"
)

// Message is one log entry.
type Message struct {
	Stream string    // "stdout" or "stderr"
	Line   []byte    // the log text as written, with its trailing newline if it had one; the callee may keep it
	Time   time.Time // when the writer received it
}

// ReadOptions select the entries Read passes on, as `docker logs` does.
type ReadOptions struct {
	// Since skips entries older than it; zero: no bound.
	Since time.Time
	// Until skips entries newer than it and ends the read (a follow too)
	// at the first such entry; zero: no bound.
	Until time.Time
	// Tail starts with the last Tail entries of the log, across rotated
	// files (before Since and Until filter them, like Docker); <0: all of
	// them; 0: none, only entries written from now on when following.
	Tail int
	// Follow keeps reading entries as they are written, until Done is
	// closed (then what is written is read and Read returns) or the
	// context ends.
	Follow bool
	// Done is closed once the writer will write no more (the container
	// stopped). Nil: never.
	Done <-chan struct{}
}

const (
	// blockSize is how much Read reads at a time, forwards and backwards.
	blockSize = 32 << 10
	// maxLineLen bounds an entry: the writer splits output at 16 KiB, which
	// JSON escaping can make at most six times longer. A longer line is
	// garbage and skipped.
	maxLineLen = 1 << 20
)

// errStop ends a read without error: an entry past ReadOptions.Until.
var errStop = errors.New("past the until bound")

// Read calls fn for each entry of the log at path and its rotated files
// (maxFiles files in all, the current one included), oldest first, as opts
// select them. It returns fn's error if fn fails, ctx.Err() when ctx ends
// first, and nil when done. A missing log is an empty log. A malformed
// line is skipped with a warning; while following, an incomplete last line
// is waited for.
func Read(ctx context.Context, path string, maxFiles int, opts ReadOptions, fn func(Message) error) error {
	return newReader(ctx, path, maxFiles, opts, fn).run(ctx)
}

// reader is one Read.
type reader struct {
	path     string
	maxFiles int
	opts     ReadOptions
	fn       func(Message) error
	log      *slog.Logger
	open     map[*logFile]struct{} // files to close when done
	nread    int64                 // bytes read from log files: tests measure the tail's cost
	pollOnly bool                  // tests: follow by polling even where inotify works

	// followStarts, if set, is called when what the log held at the start
	// is read (tests).
	followStarts func()
}

func newReader(ctx context.Context, path string, maxFiles int, opts ReadOptions, fn func(Message) error) *reader {
	return &reader{
		path:     path,
		maxFiles: max(maxFiles, 1),
		opts:     opts,
		fn:       fn,
		log:      log.G(ctx),
		open:     make(map[*logFile]struct{}),
	}
}

// logFile is one open log file and how far it has been read.
type logFile struct {
	f        *os.File
	id       os.FileInfo // identity, for os.SameFile
	off      int64       // offset of the next byte to read
	buf      []byte      // read, not yet consumed: the start of an incomplete line
	skipping bool        // dropping an overlong line up to its newline
}

func (r *reader) run(ctx context.Context) error {
	defer func() {
		for lf := range r.open {
			lf.f.Close()
		}
	}()
	if !r.opts.Follow && r.opts.Tail == 0 {
		return nil
	}
	var w *watcher
	if r.opts.Follow {
		// Watch before looking: no change after the first look goes unseen.
		w = newWatcher(r.log, r.path, r.pollOnly)
		defer w.close()
	}
	files, err := r.openNewer(nil)
	if err != nil {
		return err
	}
	if err := r.readStart(ctx, files); err != nil {
		if errors.Is(err, errStop) {
			return nil
		}
		return err
	}
	if !r.opts.Follow {
		return nil
	}
	var cur *logFile
	if len(files) > 0 {
		cur = files[len(files)-1]
	}
	err = r.follow(ctx, w, cur)
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// name returns the name of file i: the current one for 0, path.i else.
func (r *reader) name(i int) string {
	if i == 0 {
		return r.path
	}
	return r.path + "." + strconv.Itoa(i)
}

// openNewer opens the log files newer than last (all of them if last is
// nil or gone), oldest first. It looks from the current file towards the
// oldest. A rotation during the look moves every file one place up, so
// files seen before it and after it are not in age order (one seen at
// place 0 early may be older than one seen at place 2 later): the look is
// repeated until each file it found is still where it was found, which
// means no rotation came in between.
func (r *reader) openNewer(last *logFile) ([]*logFile, error) {
	for attempt := 1; ; attempt++ {
		found, places, err := r.scanNewer(last)
		if err != nil {
			return nil, err
		}
		if attempt == maxRescans || r.stillAt(found, places, last) {
			slices.Reverse(found)
			return found, nil
		}
		r.closeAll(found)
	}
}

// maxRescans bounds how often openNewer looks again: a writer rotating
// faster than a look takes would otherwise keep it looking.
const maxRescans = 20

// scanNewer opens the files newer than last, newest first, with the place
// each was found at (and last's, if it was found, at the end of places).
func (r *reader) scanNewer(last *logFile) ([]*logFile, []int, error) {
	var found []*logFile
	var places []int
	for i := 0; i < r.maxFiles; i++ {
		f, err := os.Open(r.name(i))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			r.closeAll(found)
			return nil, nil, fmt.Errorf("open log: %w", err)
		}
		id, err := f.Stat()
		if err != nil {
			f.Close()
			r.closeAll(found)
			return nil, nil, fmt.Errorf("open log: %w", err)
		}
		if last != nil && os.SameFile(id, last.id) {
			f.Close()
			places = append(places, i)
			break
		}
		if slices.ContainsFunc(found, func(lf *logFile) bool { return os.SameFile(id, lf.id) }) {
			f.Close()
			continue
		}
		lf := &logFile{f: f, id: id}
		r.open[lf] = struct{}{}
		found = append(found, lf)
		places = append(places, i)
	}
	return found, places, nil
}

// stillAt reports whether each file found (and last, at the end of
// places if it was found) is still at the place it was found at.
func (r *reader) stillAt(found []*logFile, places []int, last *logFile) bool {
	for k, i := range places {
		fi, err := os.Stat(r.name(i))
		if err != nil {
			return false
		}
		want := last
		if k < len(found) {
			want = found[k]
		}
		if !os.SameFile(fi, want.id) {
			return false
		}
	}
	return true
}

// done closes lf once it is read, warning about an incomplete last line.
func (r *reader) done(lf *logFile) {
	if len(lf.buf) > 0 && !lf.skipping {
		r.log.Warn("skip incomplete last log line", "path", lf.f.Name(), "bytes", len(lf.buf))
	}
	delete(r.open, lf)
	lf.f.Close()
}

func (r *reader) closeAll(files []*logFile) {
	for _, lf := range files {
		delete(r.open, lf)
		lf.f.Close()
	}
}

// readStart reads what the files (oldest first, the current one last)
// hold now, from where the tail starts.
func (r *reader) readStart(ctx context.Context, files []*logFile) error {
	first := 0
	if n := r.opts.Tail; n >= 0 {
		// Find where the last n complete lines start, newest file first.
		first = len(files)
		for i := len(files) - 1; i >= 0; i-- {
			off, found, err := r.tailOffset(files[i], n)
			if err != nil {
				return err
			}
			files[i].off = off
			first = i
			if found == n {
				break
			}
			n -= found
		}
		r.closeAll(files[:first])
	}
	for i := first; i < len(files); i++ {
		lf := files[i]
		if err := r.drain(ctx, lf); err != nil {
			return err
		}
		last := i == len(files)-1
		if last && r.opts.Follow {
			break // follow goes on with it
		}
		if last && len(lf.buf) > 0 {
			// The writer is in the middle of an entry, most likely.
			r.log.Debug("log ends in an incomplete line", "path", lf.f.Name())
			lf.buf = lf.buf[:0]
		}
		r.done(lf)
	}
	if r.followStarts != nil {
		r.followStarts()
	}
	return nil
}

// tailOffset returns the offset where the last n complete lines of lf
// start and how many of them it has (n, or all it has if fewer, then
// from offset 0). It reads lf backwards a block at a time: a tail costs
// about the size of the lines it returns, not of the file.
func (r *reader) tailOffset(lf *logFile, n int) (off int64, found int, err error) {
	fi, err := lf.f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("tail log: %w", err)
	}
	buf := make([]byte, blockSize)
	newlines := 0
	for end := fi.Size(); end > 0; {
		start := max(end-blockSize, 0)
		b := buf[:end-start]
		m, err := lf.f.ReadAt(b, start)
		r.nread += int64(m)
		if m < len(b) {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the file shrank meanwhile
			}
			return 0, 0, fmt.Errorf("tail log %s: %w", lf.f.Name(), err)
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				continue
			}
			// The (n+1)th newline from the end ends the line before the tail.
			if newlines == n {
				return start + int64(i) + 1, n, nil
			}
			newlines++
		}
		end = start
	}
	return 0, newlines, nil
}

// drain reads lf from its offset to its current end and passes on each
// complete line; an incomplete last line stays in lf.buf.
func (r *reader) drain(ctx context.Context, lf *logFile) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := len(lf.buf)
		lf.buf = slices.Grow(lf.buf, blockSize)
		n, err := lf.f.ReadAt(lf.buf[start:start+blockSize], lf.off)
		r.nread += int64(n)
		lf.off += int64(n)
		lf.buf = lf.buf[:start+n]
		if err := r.lines(ctx, lf); err != nil {
			return err
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read log: %w", err)
		}
	}
}

// lines passes on the complete lines in lf.buf and keeps the rest.
func (r *reader) lines(ctx context.Context, lf *logFile) error {
	data := lf.buf
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		line := data[:i]
		data = data[i+1:]
		if lf.skipping {
			lf.skipping = false
			continue
		}
		if err := r.emit(ctx, lf, line); err != nil {
			return err
		}
	}
	if len(data) > maxLineLen && !lf.skipping {
		r.log.Warn("skip overlong log line", "path", lf.f.Name(), "offset", lf.off-int64(len(data)))
		lf.skipping = true
	}
	if lf.skipping {
		data = data[:0]
	}
	lf.buf = append(lf.buf[:0], data...)
	return nil
}

// entry is a log line as the writer encodes it.
type entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// emit decodes one line and passes it to fn if the options select it.
func (r *reader) emit(ctx context.Context, lf *logFile, line []byte) error {
	var e entry
	if err := json.Unmarshal(line, &e); err != nil {
		r.log.Warn("skip malformed log line", "path", lf.f.Name(), "error", err)
		return nil
	}
	if !r.opts.Since.IsZero() && e.Time.Before(r.opts.Since) {
		return nil
	}
	if !r.opts.Until.IsZero() && e.Time.After(r.opts.Until) {
		return errStop
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.fn(Message{Stream: e.Stream, Line: []byte(e.Log), Time: e.Time})
}
