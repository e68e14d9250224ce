package docker

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	api "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/errdefs"
)

// pathStatHeader carries a PathStat as base64 JSON on archive responses.
const pathStatHeader = "X-Docker-Container-Path-Stat"

// archivePath returns the path= of an archive request; it may not be
// empty.
func archivePath(r *http.Request) (string, error) {
	path := r.URL.Query().Get("path")
	if path == "" {
		return "", errInvalid("path cannot be empty")
	}
	return path, nil
}

// setPathStat sets the stat header.
func setPathStat(h http.Header, st api.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode path stat: %w", err)
	}
	h.Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

// pathError words a missing path as Docker does once the container is
// known to exist; other errors pass unchanged.
func (s *Server) pathError(r *http.Request, ref, path string, err error) error {
	if !errdefs.IsNotFound(err) {
		return err
	}
	if _, cerr := s.d.Container(r.Context(), ref, false); cerr != nil {
		return cerr
	}
	//lint:ignore ST1005 Docker's wording
	return fmt.Errorf("Could not find the file %s in container %s: %w", path, ref, errdefs.ErrNotFound)
}

// statArchivePath answers HEAD /containers/{name}/archive?path= with the
// stat header.
func (s *Server) statArchivePath(w http.ResponseWriter, r *http.Request, p params) error {
	path, err := archivePath(r)
	if err != nil {
		return err
	}
	st, err := s.d.StatContainerPath(r.Context(), p.name, path)
	if err != nil {
		return s.pathError(r, p.name, path, err)
	}
	if err := setPathStat(w.Header(), st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// getArchive answers GET /containers/{name}/archive?path= with a tar of
// the path and the stat header. An error after the first byte cuts the
// connection.
func (s *Server) getArchive(w http.ResponseWriter, r *http.Request, p params) error {
	path, err := archivePath(r)
	if err != nil {
		return err
	}
	rc, st, err := s.d.ContainerArchive(r.Context(), p.name, path)
	if err != nil {
		return s.pathError(r, p.name, path, err)
	}
	defer rc.Close()
	if err := setPathStat(w.Header(), st); err != nil {
		return err
	}
	lw := &lazyWriter{w: w, contentType: "application/x-tar"}
	if _, err := io.Copy(lw, rc); err != nil {
		if lw.started {
			panic(http.ErrAbortHandler)
		}
		return fmt.Errorf("archive %s of %s: %w", path, p.name, err)
	}
	if !lw.started {
		lw.Write(nil)
	}
	return nil
}

// putArchive answers PUT /containers/{name}/archive?path=
// &noOverwriteDirNonDir=&copyUIDGID= by extracting the tar in the body
// into the directory path.
func (s *Server) putArchive(w http.ResponseWriter, r *http.Request, p params) error {
	path, err := archivePath(r)
	if err != nil {
		return err
	}
	opts := daemon.ExtractOptions{NoOverwriteDirNonDir: boolValue(r, "noOverwriteDirNonDir"), CopyUIDGID: boolValue(r, "copyUIDGID")}
	if err := s.d.ExtractToContainer(r.Context(), p.name, path, bodyReader{r.Body}, opts); err != nil {
		return s.pathError(r, p.name, path, err)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
