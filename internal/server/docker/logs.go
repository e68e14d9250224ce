package docker

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/errdefs"
)

// logTimeFormat is Docker's timestamp of a log line: RFC 3339 with
// exactly nine fraction digits, so lines sort as text.
const logTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// logsOptions parses the query of GET /containers/{name}/logs.
func logsOptions(r *http.Request) (daemon.LogsOptions, error) {
	q := r.URL.Query()
	opts := daemon.LogsOptions{
		Stdout:     boolValue(r, "stdout"),
		Stderr:     boolValue(r, "stderr"),
		Follow:     boolValue(r, "follow"),
		Timestamps: boolValue(r, "timestamps"),
		Tail:       -1,
	}
	if !opts.Stdout && !opts.Stderr {
		return opts, errInvalid("Bad parameters: you must choose at least one stream")
	}
	var err error
	if v := q.Get("since"); v != "" {
		if opts.Since, err = parseTime("since", v); err != nil {
			return opts, err
		}
	}
	if v := q.Get("until"); v != "" {
		if opts.Until, err = parseTime("until", v); err != nil {
			return opts, err
		}
	}
	if v := q.Get("tail"); v != "" && v != "all" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return opts, fmt.Errorf("invalid value for \"tail\": %q is neither \"all\" nor a number: %w", v, errdefs.ErrInvalidArgument)
		}
		if n >= 0 {
			opts.Tail = n
		}
	}
	return opts, nil
}

// containerLogs answers GET /containers/{name}/logs: the container's log
// lines, framed per stream without a TTY and raw with one, each prefixed
// with its time when timestamps is set. What can be refused is checked
// before the 200 header goes out; an error while reading goes into the
// stream as Docker does ("Error grabbing logs: ...", stream 3 when
// framed).
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request, p params) error {
	opts, err := logsOptions(r)
	if err != nil {
		return err
	}
	v, err := s.d.Container(r.Context(), p.name, false)
	if err != nil {
		return err
	}
	if v.LogPath == "" {
		return fmt.Errorf("configured logging driver does not support reading: %w", errdefs.ErrNotImplemented)
	}
	tty := v.Config != nil && v.Config.Tty
	ctx, cancel := s.streamContext(r)
	defer cancel()
	w.Header().Set("Content-Type", streamContentType(tty, p.version))
	w.WriteHeader(http.StatusOK)
	fw := newFlushWriter(w)
	fw.flush()
	stdout, stderr, system := outputWriters(fw, !tty)
	_, err = s.d.ContainerLogs(ctx, p.name, opts, func(e daemon.LogEntry) error {
		line := e.Line
		if opts.Timestamps {
			line = append([]byte(e.Time.UTC().Format(logTimeFormat)+" "), line...)
		}
		out := stdout
		if e.Stream == "stderr" {
			out = stderr
		}
		_, err := out.Write(line)
		return err
	})
	if err != nil && ctx.Err() == nil {
		_, _ = fmt.Fprintf(system, "Error grabbing logs: %s\n", errorMessage(err))
	}
	return nil
}
