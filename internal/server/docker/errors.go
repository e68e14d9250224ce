package docker

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/berth-project/berth/internal/errdefs"
)

// classes maps each errdefs class to its HTTP status, in the order they are
// tested: the first class an error wraps decides. This is the only place
// berth turns an error into an HTTP status.
var classes = []struct {
	class  error
	status int
}{
	{errdefs.ErrNotFound, http.StatusNotFound},
	{errdefs.ErrInvalidArgument, http.StatusBadRequest},
	{errdefs.ErrConflict, http.StatusConflict},
	{errdefs.ErrAlreadyExists, http.StatusConflict},
	{errdefs.ErrUnauthorized, http.StatusUnauthorized},
	{errdefs.ErrPermission, http.StatusForbidden},
	{errdefs.ErrNotImplemented, http.StatusNotImplemented},
	{errdefs.ErrUnavailable, http.StatusServiceUnavailable},
	{errdefs.ErrDataLoss, http.StatusInternalServerError},
	{errdefs.ErrNotModified, http.StatusNotModified},
}

// statusOf returns the HTTP status for err: that of its errdefs class,
// else 500.
func statusOf(err error) int {
	for _, c := range classes {
		if errors.Is(err, c.class) {
			return c.status
		}
	}
	return http.StatusInternalServerError
}

// errorMessage is err's text as clients see it, without the trailing name
// of its class (": not found"), which the status already says.
func errorMessage(err error) string { return errdefs.Message(err) }

// writeError answers with err's status and Docker's error body,
// {"message": "..."}.
func writeError(w http.ResponseWriter, err error) {
	status := statusOf(err)
	if status == http.StatusNotModified {
		// A 304 has no body.
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Message string `json:"message"`
	}{errorMessage(err)})
}
