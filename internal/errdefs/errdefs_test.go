package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestMessage(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("port is already allocated: %w", ErrConflict), "port is already allocated"},
		{fmt.Errorf("start: %w", fmt.Errorf("no such image: %w", ErrNotFound)), "start: no such image"},
		{errors.New("plain"), "plain"},
		{ErrConflict, "conflict"},
		{fmt.Errorf("%w: in the middle", ErrInvalidArgument), "invalid argument: in the middle"},
	} {
		if got := Message(tc.err); got != tc.want {
			t.Errorf("Message(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
