//go:build !linux

package network

import (
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/berth-project/berth/internal/errdefs"
)

var errNotLinux = fmt.Errorf("container networking needs Linux: %w", errdefs.ErrNotImplemented)

var errAddrInUse = errors.New("address already in use")

func prepareNetNSDir(string) error { return errNotLinux }

func newNetNS(string) error { return errNotLinux }

func removeNetNS(string) error { return nil }

func isNetNS(string) bool { return false }

func reservePort(string, netip.Addr, uint16) (io.Closer, error) { return nil, errNotLinux }

func linkExists(string) bool { return false }

func turnOnForwarding(bool) (bool, error) { return false, errNotLinux }

func bootID() (string, error) { return "", errNotLinux }
