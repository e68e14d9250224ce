package docker

import (
	"net/http"

	"github.com/moby/moby/api/types/network"
)

// createNetwork answers POST /networks/create.
func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request, _ params) error {
	var req network.CreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	id, warning, err := s.d.CreateNetwork(r.Context(), req.Name, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, network.CreateResponse{ID: id, Warning: warning})
}

// listNetworks answers GET /networks.
func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request, _ params) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	list, err := s.d.Networks(r.Context(), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []network.Summary{}
	}
	return writeJSON(w, http.StatusOK, list)
}

// inspectNetwork answers GET /networks/{name}.
func (s *Server) inspectNetwork(w http.ResponseWriter, r *http.Request, p params) error {
	n, err := s.d.Network(r.Context(), p.name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, n)
}

// removeNetwork answers DELETE /networks/{name}.
func (s *Server) removeNetwork(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.d.RemoveNetwork(r.Context(), p.name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// pruneNetworks answers POST /networks/prune.
func (s *Server) pruneNetworks(w http.ResponseWriter, r *http.Request, _ params) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	deleted, err := s.d.PruneNetworks(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, network.PruneReport{NetworksDeleted: nonNil(deleted)})
}

// connectNetwork answers POST /networks/{name}/connect.
func (s *Server) connectNetwork(w http.ResponseWriter, r *http.Request, p params) error {
	var req network.ConnectRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := s.d.ConnectNetwork(r.Context(), p.name, req.Container, req.EndpointConfig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// disconnectNetwork answers POST /networks/{name}/disconnect.
func (s *Server) disconnectNetwork(w http.ResponseWriter, r *http.Request, p params) error {
	var req network.DisconnectRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := s.d.DisconnectNetwork(r.Context(), p.name, req.Container, req.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
