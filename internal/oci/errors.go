package oci

import (
	"fmt"

	"github.com/berth-project/berth/internal/errdefs"
)

// classified is an error that reads as err (Docker's wording, without a
// class suffix) and also matches class, one of the errdefs classes, with
// errors.Is.
type classified struct {
	err   error
	class error
}

func (e *classified) Error() string   { return e.err.Error() }
func (e *classified) Unwrap() []error { return []error{e.err, e.class} }

// invalidf returns an error of class errdefs.ErrInvalidArgument.
func invalidf(format string, args ...any) error {
	return &classified{err: fmt.Errorf(format, args...), class: errdefs.ErrInvalidArgument}
}

// notImplementedf returns an error of class errdefs.ErrNotImplemented.
func notImplementedf(format string, args ...any) error {
	return &classified{err: fmt.Errorf(format, args...), class: errdefs.ErrNotImplemented}
}
