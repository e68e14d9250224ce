package docker

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	api "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/errdefs"
)

// statsInterval is the time between two samples of a stats stream, and
// between the two reads of a single sample with CPU deltas.
const statsInterval = time.Second

// boolDefault is boolValue with a default for an absent or empty
// parameter.
func boolDefault(r *http.Request, key string, def bool) bool {
	if strings.TrimSpace(r.URL.Query().Get(key)) == "" {
		return def
	}
	return boolValue(r, key)
}

// containerStats answers GET /containers/{name}/stats?stream=&one-shot=.
// A stream (the default) sends one sample per second, each carrying the
// previous one's CPU figures as precpu_stats, until the client goes away
// or the container is removed; a container that is not running gets
// samples with only its name and ID, as Docker sends. stream=false
// answers one sample, read twice a second apart so that precpu_stats is
// filled, unless one-shot is set.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request, p params) error {
	stream := boolDefault(r, "stream", true)
	oneShot := !versionLess(p.version, "1.41") && boolDefault(r, "one-shot", false)
	v, err := s.d.Container(r.Context(), p.name, false)
	if err != nil {
		return err
	}
	empty := api.StatsResponse{ID: v.ID, Name: "/" + v.Name, OSType: "linux"}
	fill := func(st *api.StatsResponse) {
		if st.ID == "" {
			st.ID = empty.ID
		}
		if st.Name == "" {
			st.Name = empty.Name
		}
		if st.OSType == "" {
			st.OSType = "linux"
		}
	}
	ctx, cancel := s.streamContext(r)
	defer cancel()
	if !stream {
		if !v.State.Running() {
			return writeJSON(w, http.StatusOK, empty)
		}
		cur, err := s.d.ContainerStats(ctx, p.name)
		if err != nil {
			return err
		}
		if !oneShot && sleepCtx(ctx, statsInterval) {
			if next, err := s.d.ContainerStats(ctx, p.name); err == nil {
				next.PreCPUStats, next.PreRead = cur.CPUStats, cur.Read
				cur = next
			}
		}
		fill(&cur)
		return writeJSON(w, http.StatusOK, cur)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fw := newFlushWriter(w)
	fw.flush()
	enc := json.NewEncoder(fw)
	var prev *api.StatsResponse
	for {
		st, err := s.d.ContainerStats(ctx, p.name)
		switch {
		case ctx.Err() != nil:
			return nil
		case errdefs.IsNotFound(err):
			// Removed: the stream ends.
			return nil
		case err != nil:
			st = empty
		}
		fill(&st)
		if prev != nil {
			st.PreCPUStats, st.PreRead = prev.CPUStats, prev.Read
		}
		if err := enc.Encode(st); err != nil {
			return nil
		}
		prev = &st
		if !sleepCtx(ctx, statsInterval) {
			return nil
		}
	}
}

// sleepCtx waits for d; it returns false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
