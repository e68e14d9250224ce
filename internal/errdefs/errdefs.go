// Package errdefs defines the few classes of error berth distinguishes
// (not found, conflict, invalid argument, ...) and how to test for them.
// Callers wrap a class with context using fmt.Errorf("...: %w", err); the
// API servers map a class to an HTTP status or gRPC code in one place.
package errdefs

import (
	"errors"
	"strings"
)

// The error classes. Wrap them, never compare error strings.
var (
	ErrNotFound        = errors.New("not found")
	ErrAlreadyExists   = errors.New("already exists")
	ErrConflict        = errors.New("conflict")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrNotImplemented  = errors.New("not implemented")
	ErrUnavailable     = errors.New("unavailable")
	ErrPermission      = errors.New("permission denied")
	ErrUnauthorized    = errors.New("unauthorized")
	ErrDataLoss        = errors.New("data corrupted")
	// ErrNotModified says the request asked for what already is (start
	// of a running container); HTTP answers it with 304.
	ErrNotModified = errors.New("not modified")
)

// IsNotFound reports whether err is of class ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsAlreadyExists reports whether err is of class ErrAlreadyExists.
func IsAlreadyExists(err error) bool { return errors.Is(err, ErrAlreadyExists) }

// IsConflict reports whether err is of class ErrConflict.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// IsInvalidArgument reports whether err is of class ErrInvalidArgument.
func IsInvalidArgument(err error) bool { return errors.Is(err, ErrInvalidArgument) }

// IsNotImplemented reports whether err is of class ErrNotImplemented.
func IsNotImplemented(err error) bool { return errors.Is(err, ErrNotImplemented) }

// IsUnavailable reports whether err is of class ErrUnavailable.
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }

// IsPermission reports whether err is of class ErrPermission.
func IsPermission(err error) bool { return errors.Is(err, ErrPermission) }

// IsUnauthorized reports whether err is of class ErrUnauthorized.
func IsUnauthorized(err error) bool { return errors.Is(err, ErrUnauthorized) }

// IsDataLoss reports whether err is of class ErrDataLoss (a digest or size
// mismatch, a truncated or corrupt blob).
func IsDataLoss(err error) bool { return errors.Is(err, ErrDataLoss) }

// IsNotModified reports whether err is of class ErrNotModified.
func IsNotModified(err error) bool { return errors.Is(err, ErrNotModified) }

// classes are the error classes in the order Message tests them.
var classes = []error{
	ErrNotFound, ErrAlreadyExists, ErrConflict, ErrInvalidArgument, ErrNotImplemented,
	ErrUnavailable, ErrPermission, ErrUnauthorized, ErrDataLoss, ErrNotModified,
}

// Message is err's text as a user should read it: without the trailing
// ": <class>" that wrapping a class appends.
func Message(err error) string {
	msg := err.Error()
	for _, c := range classes {
		if errors.Is(err, c) {
			if m, ok := strings.CutSuffix(msg, ": "+c.Error()); ok && m != "" {
				return m
			}
		}
	}
	return msg
}
