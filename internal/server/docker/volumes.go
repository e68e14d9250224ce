package docker

import (
	"net/http"

	"github.com/moby/moby/api/types/volume"
)

// createVolume answers POST /volumes/create.
func (s *Server) createVolume(w http.ResponseWriter, r *http.Request, _ params) error {
	var req volume.CreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	v, err := s.d.CreateVolume(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

// listVolumes answers GET /volumes.
func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request, _ params) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	vols, err := s.d.Volumes(r.Context(), f)
	if err != nil {
		return err
	}
	if vols == nil {
		vols = []volume.Volume{}
	}
	return writeJSON(w, http.StatusOK, volume.ListResponse{Volumes: vols, Warnings: []string{}})
}

// inspectVolume answers GET /volumes/{name}.
func (s *Server) inspectVolume(w http.ResponseWriter, r *http.Request, p params) error {
	v, err := s.d.Volume(r.Context(), p.name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// removeVolume answers DELETE /volumes/{name}?force=.
func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.d.RemoveVolume(r.Context(), p.name, boolValue(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// pruneVolumes answers POST /volumes/prune.
func (s *Server) pruneVolumes(w http.ResponseWriter, r *http.Request, _ params) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	deleted, space, err := s.d.PruneVolumes(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, volume.PruneReport{VolumesDeleted: nonNil(deleted), SpaceReclaimed: space})
}
