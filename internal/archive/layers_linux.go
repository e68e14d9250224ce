package archive

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// layerStack is a read-only view of overlay lower directories (top first),
// each an upper directory of an earlier layer with overlay whiteouts.
type layerStack struct{ fds []int }

func openLayers(dirs []string) (*layerStack, error) {
	s := &layerStack{}
	for _, d := range dirs {
		fd, err := openRoot(d)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("open lower: %w", err)
		}
		s.fds = append(s.fds, fd)
	}
	return s, nil
}

func (s *layerStack) close() {
	for _, fd := range s.fds {
		unix.Close(fd)
	}
	s.fds = nil
}

// layerFile is a file found in a layer: name inside the directory dirfd,
// which the caller closes with close.
type layerFile struct {
	dirfd int
	name  string
	st    unix.Stat_t
}

func (f layerFile) close() { unix.Close(f.dirfd) }

type lookupState int

const (
	lookupAbsent lookupState = iota // not in this layer: look lower
	lookupHidden                    // whited out or under an opaque dir: stop
	lookupFound
)

// lookup finds rel in the merged view of the stack, as overlayfs would:
// whiteouts and non-directories hide what is below them, an opaque
// directory hides the layers under it. Symlinks are never followed.
func (s *layerStack) lookup(rel string) (layerFile, bool, error) {
	comps := strings.Split(rel, "/")
	for _, root := range s.fds {
		f, state, err := lookupLayer(root, comps)
		if err != nil {
			return layerFile{}, false, err
		}
		switch state {
		case lookupFound:
			return f, true, nil
		case lookupHidden:
			return layerFile{}, false, nil
		}
	}
	return layerFile{}, false, nil
}

func lookupLayer(root int, comps []string) (layerFile, lookupState, error) {
	dfd, err := unix.Openat(root, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return layerFile{}, 0, err
	}
	opaque := false
	fail := func(state lookupState, err error) (layerFile, lookupState, error) {
		unix.Close(dfd)
		return layerFile{}, state, err
	}
	for _, c := range comps[:len(comps)-1] {
		st, err := lstatAt(dfd, c)
		if err == unix.ENOENT {
			if opaque {
				return fail(lookupHidden, nil)
			}
			return fail(lookupAbsent, nil)
		}
		if err != nil {
			return fail(0, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fail(lookupHidden, nil) // a whiteout or a file hides the rest
		}
		if dirIsOpaque(dfd, c) {
			opaque = true
		}
		nfd, err := unix.Openat(dfd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(0, err)
		}
		unix.Close(dfd)
		dfd = nfd
	}
	last := comps[len(comps)-1]
	st, err := lstatAt(dfd, last)
	switch {
	case err == unix.ENOENT && opaque:
		return fail(lookupHidden, nil)
	case err == unix.ENOENT:
		return fail(lookupAbsent, nil)
	case err != nil:
		return fail(0, err)
	case isWhiteoutDev(&st):
		return fail(lookupHidden, nil)
	}
	return layerFile{dirfd: dfd, name: last, st: st}, lookupFound, nil
}

func dirIsOpaque(dirfd int, name string) bool {
	buf := make([]byte, 4)
	p := procPath(dirfd, name)
	for _, x := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		if n, err := unix.Lgetxattr(p, x, buf); err == nil && string(buf[:n]) == "y" {
			return true
		}
	}
	return false
}

// children lists the names visible in the merged view of the directory rel.
func (s *layerStack) children(rel string) (map[string]bool, error) {
	visible := map[string]bool{}
	decided := map[string]bool{}
	var comps []string
	if rel != "" {
		comps = strings.Split(rel, "/")
	}
	for _, root := range s.fds {
		var fd int
		var opaque bool
		if len(comps) == 0 {
			var err error
			if fd, err = unix.Openat(root, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
				return nil, err
			}
		} else {
			f, state, err := lookupLayer(root, comps)
			if err != nil {
				return nil, err
			}
			if state == lookupHidden {
				break
			}
			if state == lookupAbsent {
				continue
			}
			if f.st.Mode&unix.S_IFMT != unix.S_IFDIR {
				f.close()
				break
			}
			opaque = dirIsOpaque(f.dirfd, f.name)
			fd, err = unix.Openat(f.dirfd, f.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			f.close()
			if err != nil {
				return nil, err
			}
		}
		names, err := readDirNames(fd)
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		for _, n := range names {
			if decided[n] {
				continue
			}
			decided[n] = true
			if st, err := lstatAt(fd, n); err == nil && !isWhiteoutDev(&st) {
				visible[n] = true
			}
		}
		unix.Close(fd)
		if opaque {
			break
		}
	}
	return visible, nil
}
