package cli

import (
	"errors"
	"fmt"
)

// StatusError carries the exit status a command ends with; Status, if
// set, is printed to stderr first.
type StatusError struct {
	Status     string
	StatusCode int
	Cause      error
}

// Error is the status message, else the cause's.
func (e *StatusError) Error() string {
	if e.Status != "" {
		return e.Status
	}
	if e.Cause != nil {
		return e.Cause.Error()
	}
	return fmt.Sprintf("exit status %d", e.StatusCode)
}

// Unwrap returns the cause.
func (e *StatusError) Unwrap() error { return e.Cause }

// ExitCode is the exit status for err: a StatusError's code, 0 for nil
// and 1 otherwise.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.StatusCode
	}
	return 1
}
