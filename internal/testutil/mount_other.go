//go:build !linux

package testutil

import "errors"

func detach(string) error {
	return errors.New("detach mount: only supported on linux")
}
