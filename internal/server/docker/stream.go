package docker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/jsonstream"

	"github.com/berth-project/berth/internal/image"
)

// progressInterval is how often a byte count of one layer is sent; the
// image service reports every read.
const progressInterval = 100 * time.Millisecond

// streamMessage is a line of Docker's JSON progress stream: the current
// fields plus "progress" (a rendered bar) and "error", which clients older
// than API 1.48 read.
type streamMessage struct {
	jsonstream.Message
	ProgressMessage string `json:"progress,omitempty"`
	ErrorMessage    string `json:"error,omitempty"`
}

// progressStream writes a JSON progress stream (pull, push, load,
// import). The 200 header goes out with the first message, so an
// operation that fails before reporting anything still gets an error
// status. Safe for concurrent use: the image service reports from several
// goroutines.
type progressStream struct {
	w       http.ResponseWriter
	mu      sync.Mutex
	started bool
	broken  bool // the client went away; further writes are dropped
	last    map[string]time.Time
}

func newProgressStream(w http.ResponseWriter) *progressStream {
	return &progressStream{w: w, last: map[string]time.Time{}}
}

// send writes one message and flushes it.
func (s *progressStream) send(m streamMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sendLocked(m)
}

func (s *progressStream) sendLocked(m streamMessage) {
	if s.broken {
		return
	}
	if !s.started {
		s.w.Header().Set("Content-Type", "application/json")
		s.w.WriteHeader(http.StatusOK)
		s.started = true
	}
	b, err := json.Marshal(m)
	if err == nil {
		_, err = s.w.Write(append(b, '\n'))
	}
	if err != nil {
		s.broken = true
		return
	}
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

// status sends a plain status line.
func (s *progressStream) status(id, status string) {
	s.send(streamMessage{Message: jsonstream.Message{ID: id, Status: status}})
}

// stream sends a "stream" line (load's "Loaded image: x").
func (s *progressStream) stream(text string) {
	s.send(streamMessage{Message: jsonstream.Message{Stream: text}})
}

// aux sends an aux line carrying v.
func (s *progressStream) aux(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	raw := json.RawMessage(b)
	s.send(streamMessage{Message: jsonstream.Message{Aux: &raw}})
}

// progress is an image.ProgressFunc: it sends p, dropping byte counts of
// one layer that come sooner than progressInterval after the last one.
func (s *progressStream) progress(p image.Progress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := streamMessage{Message: jsonstream.Message{ID: p.ID, Status: p.Status}}
	if p.Current > 0 || p.Total > 0 {
		key := p.ID + "\x00" + p.Status
		now := time.Now()
		if p.Total <= 0 || p.Current < p.Total {
			if t, ok := s.last[key]; ok && now.Sub(t) < progressInterval {
				return
			}
		}
		s.last[key] = now
		m.Progress = &jsonstream.Progress{Current: p.Current, Total: p.Total}
		m.ProgressMessage = progressBar(p.Current, p.Total)
	}
	s.sendLocked(m)
}

// finish ends the stream after an operation: with err nil it does nothing;
// before anything was sent it returns err for the caller to answer with a
// status; after, it writes err into the stream as Docker does and returns
// nil.
func (s *progressStream) finish(err error) error {
	if err == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return err
	}
	msg := errorMessage(err)
	s.sendLocked(streamMessage{
		Message:      jsonstream.Message{Error: &jsonstream.Error{Code: statusOf(err), Message: msg}},
		ErrorMessage: msg,
	})
	return nil
}

// progressBar renders Docker's textual bar: "[=====>      ]  1.2MB/3.4MB".
func progressBar(cur, total int64) string {
	const width = 50
	if total <= 0 {
		return fmt.Sprintf("%8s", humanSize(cur))
	}
	n := int(float64(width) * float64(cur) / float64(total))
	n = min(max(n, 0), width)
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("[%s] %8s/%s", bar, humanSize(cur), humanSize(total))
}

// humanSize writes n bytes with decimal units and 3 significant digits, as
// Docker does ("1.23MB").
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}
