package volume

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/metadata"
)

// Mount prepares the mounts ms of containerID for a start, rootfs being
// the container's mounted root filesystem on the host:
//
//   - a volume created with driver options (type, device, o) is mounted
//     on its _data directory unless it already is, and containerID counted
//     as one of its holders (Unmount drops it);
//   - a volume never populated and still empty gets a copy of what rootfs
//     has at the mount's destination (resolved inside rootfs, never
//     following a symlink out), with owners, modes, times and extended
//     attributes, once; OptNoCopy disables it, and so does an empty rootfs;
//   - a bind with shared or slave propagation must come from a shared (or
//     slave) mount, as Docker checks.
//
// On error what this call mounted is undone.
func (s *Store) Mount(ctx context.Context, containerID, rootfs string, ms []container.Mount) error {
	if containerID == "" {
		return invalid("mount volumes: empty container id")
	}
	var done []container.Mount
	for _, m := range ms {
		var err error
		switch m.Type {
		case TypeBind:
			err = checkPropagation(m.Source, m.Propagation)
		case TypeVolume:
			if err = s.mountOne(ctx, containerID, rootfs, m); err == nil {
				done = append(done, m)
			}
		}
		if err != nil {
			if uerr := s.Unmount(ctx, containerID, done); uerr != nil {
				log.G(ctx).Warn("undo volume mounts", "container", containerID, "error", uerr)
			}
			return err
		}
	}
	return nil
}

// mountOne mounts one volume for containerID and does its copy-up.
func (s *Store) mountOne(ctx context.Context, containerID, rootfs string, m container.Mount) error {
	unlock := s.volLocks.lock(m.Name)
	defer unlock()
	r, err := s.get(m.Name)
	if err != nil {
		return err
	}
	dir := s.dataDir(r.Name)
	mountedHere := false
	if r.hasMount() {
		up, err := isMounted(dir)
		if err != nil {
			return fmt.Errorf("mount volume %s: %w", r.Name, err)
		}
		if !up {
			if err := mountVolume(dir, r.Options); err != nil {
				return err
			}
			mountedHere = true
			log.G(ctx).Debug("volume mounted", "volume", r.Name, "type", r.Options["type"])
		}
		err = s.update(r.Name, func(r *record) error {
			r.MountedBy = addString(r.MountedBy, containerID)
			if mountedHere && r.Options["type"] == "tmpfs" {
				r.Populated = false
			}
			return nil
		})
		if err != nil {
			if mountedHere {
				_ = unmountVolume(dir)
			}
			return fmt.Errorf("mount volume %s: %w", r.Name, err)
		}
		if mountedHere && r.Options["type"] == "tmpfs" {
			r.Populated = false
		}
	}
	if rootfs == "" || r.Populated || slices.Contains(m.Options, OptNoCopy) {
		return nil
	}
	populated, err := copyUp(rootfs, m.Destination, dir)
	if errors.Is(err, syscall.EROFS) {
		// A read-only volume (o=bind,ro of an empty directory) cannot
		// take a copy; Docker's would fail, berth starts without it.
		log.G(ctx).Info("volume is read-only, no copy-up", "volume", r.Name)
		return nil
	}
	if err != nil {
		err = fmt.Errorf("copy %s of the image into volume %s: %w", m.Destination, r.Name, err)
		if cerr := emptyDir(dir); cerr != nil {
			log.G(ctx).Warn("clean volume after failed copy-up", "volume", r.Name, "error", cerr)
		}
		if r.hasMount() {
			if uerr := s.unmountOne(ctx, containerID, r.Name); uerr != nil {
				log.G(ctx).Warn("undo volume mount", "volume", r.Name, "error", uerr)
			}
		}
		return err
	}
	if !populated {
		return nil
	}
	return s.update(r.Name, func(r *record) error {
		r.Populated = true
		return nil
	})
}

// Unmount undoes Mount for containerID (at container stop): it drops the
// container as holder of the volumes' driver-option mounts and unmounts
// those it held last. Volumes already gone or not held are no error.
func (s *Store) Unmount(ctx context.Context, containerID string, ms []container.Mount) error {
	var errs []error
	seen := map[string]bool{}
	for _, m := range ms {
		if m.Type != TypeVolume || seen[m.Name] {
			continue
		}
		seen[m.Name] = true
		unlock := s.volLocks.lock(m.Name)
		err := s.unmountOne(ctx, containerID, m.Name)
		unlock()
		if err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// unmountOne drops containerID as holder of volume name's mount; the
// caller holds the volume's lock.
func (s *Store) unmountOne(ctx context.Context, containerID, name string) error {
	if r, err := s.get(name); err != nil || !slices.Contains(r.MountedBy, containerID) {
		return err // nothing held: no write
	}
	var last bool
	var opts map[string]string
	err := s.update(name, func(r *record) error {
		if !slices.Contains(r.MountedBy, containerID) {
			return nil
		}
		r.MountedBy = removeString(r.MountedBy, containerID)
		last = len(r.MountedBy) == 0 && r.hasMount()
		opts = r.Options
		if last && opts["type"] == "tmpfs" {
			r.Populated = false
		}
		return nil
	})
	if err != nil || !last {
		return err
	}
	if err := unmountVolume(s.dataDir(name)); err != nil {
		return fmt.Errorf("unmount volume %s: %w", name, err)
	}
	log.G(ctx).Debug("volume unmounted", "volume", name, "type", opts["type"])
	return nil
}

// Release drops containerID as a user of every volume (at container
// remove), unmounting what it still held. With removeAnonymous, the
// anonymous volumes among ms that no other container uses are removed
// (docker rm -v).
func (s *Store) Release(ctx context.Context, containerID string, ms []container.Mount, removeAnonymous bool) error {
	if containerID == "" {
		return invalid("release volumes: empty container id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs, err := s.records()
	if err != nil {
		return fmt.Errorf("release volumes of %s: %w", containerID, err)
	}
	var errs []error
	for _, r := range recs {
		if !slices.Contains(r.Users, containerID) && !slices.Contains(r.MountedBy, containerID) {
			continue
		}
		unlock := s.volLocks.lock(r.Name)
		if err := s.unmountOne(ctx, containerID, r.Name); err != nil {
			errs = append(errs, err)
		}
		err := s.update(r.Name, func(r *record) error {
			r.Users = removeString(r.Users, containerID)
			return nil
		})
		unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}
	if !removeAnonymous {
		return errors.Join(errs...)
	}
	for _, m := range ms {
		if m.Type != TypeVolume || !m.Anonymous {
			continue
		}
		var r record
		err := s.db.View(func(tx *metadata.Tx) error { return tx.GetJSON(Kind, m.Name, &r) })
		if err != nil {
			if !errdefs.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		if len(r.Users) > 0 || len(r.MountedBy) > 0 {
			continue // still used by another container: not an error
		}
		if err := s.removeLocked(ctx, m.Name); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Reconcile forgets, at daemon start, what the records say about
// containers that are gone: users for which exists is false (a crash
// between Resolve and the container's record, or a remove interrupted
// before Release) and mount holds of containers for which running is false
// (stopped while the daemon was down), unmounting what no container holds
// any more. Anonymous volumes are kept; prune removes them.
func (s *Store) Reconcile(ctx context.Context, exists, running func(containerID string) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	recs, err := s.records()
	if err != nil {
		return fmt.Errorf("reconcile volumes: %w", err)
	}
	var errs []error
	for _, r := range recs {
		unlock := s.volLocks.lock(r.Name)
		for _, id := range r.MountedBy {
			if !running(id) {
				if err := s.unmountOne(ctx, id, r.Name); err != nil {
					errs = append(errs, err)
				}
			}
		}
		var gone []string
		for _, id := range r.Users {
			if !exists(id) {
				gone = append(gone, id)
			}
		}
		if len(gone) > 0 {
			log.G(ctx).Info("volume users that no longer exist dropped", "volume", r.Name, "containers", gone)
			err := s.update(r.Name, func(r *record) error {
				for _, id := range gone {
					r.Users = removeString(r.Users, id)
				}
				return nil
			})
			if err != nil {
				errs = append(errs, err)
			}
		}
		unlock()
	}
	return errors.Join(errs...)
}

// SpecMounts turns mounts into OCI spec mounts, parents first. Volumes
// and binds become "bind" mounts: rbind (bind with OptNonRecursive), ro
// plus rro when read-only (recursively read-only where the kernel can,
// unless OptReadOnlyNonRecursive; always with OptReadOnlyForceRecursive)
// and their propagation (rprivate when none). The SELinux words z and Z
// and nocopy do not reach the spec. A tmpfs gets Docker's defaults
// (noexec, nosuid, nodev, rprivate) overridden by its own options.
func SpecMounts(ms []container.Mount) []specs.Mount {
	sorted := slices.Clone(ms)
	sort.SliceStable(sorted, func(i, j int) bool { return depth(sorted[i].Destination) < depth(sorted[j].Destination) })
	out := make([]specs.Mount, 0, len(sorted))
	for _, m := range sorted {
		switch m.Type {
		case TypeTmpfs:
			opts := []string{"noexec", "nosuid", "nodev", "rprivate"}
			if !m.RW {
				opts = append(opts, "ro")
			}
			out = append(out, specs.Mount{
				Destination: m.Destination,
				Type:        "tmpfs",
				Source:      "tmpfs",
				Options:     mergeOptions(append(opts, m.Options...)),
			})
		case TypeVolume, TypeBind:
			opts := []string{"rbind"}
			if slices.Contains(m.Options, OptNonRecursive) {
				opts[0] = "bind"
			}
			if !m.RW {
				opts = append(opts, "ro")
				force := slices.Contains(m.Options, OptReadOnlyForceRecursive)
				if force || (!slices.Contains(m.Options, OptReadOnlyNonRecursive) && opts[0] == "rbind" && recursiveReadOnlySupported()) {
					opts = append(opts, "rro")
				}
			}
			prop := m.Propagation
			if prop == "" {
				prop = "rprivate"
			}
			opts = append(opts, prop)
			out = append(out, specs.Mount{
				Destination: m.Destination,
				Type:        "bind",
				Source:      m.Source,
				Options:     opts,
			})
		}
	}
	return out
}

// RootfsPropagation returns the propagation the container's root must
// have for the propagation of its mounts to hold, given the spec's
// current value: shared if a mount is [r]shared, rslave if one is
// [r]slave (unless the current value already allows it), else current.
func RootfsPropagation(ms []container.Mount, current string) string {
	isShared := func(p string) bool { return p == "shared" || p == "rshared" }
	isSlave := func(p string) bool { return p == "slave" || p == "rslave" }
	for _, m := range ms {
		if isShared(m.Propagation) && !isShared(current) {
			current = "shared"
		}
	}
	for _, m := range ms {
		if isSlave(m.Propagation) && !isShared(current) && !isSlave(current) {
			current = "rslave"
		}
	}
	return current
}

// opposites pairs the mount flags that cancel each other.
var opposites = map[string]string{
	"exec": "noexec", "noexec": "exec",
	"suid": "nosuid", "nosuid": "suid",
	"dev": "nodev", "nodev": "dev",
	"ro": "rw", "rw": "ro",
	"atime": "noatime", "noatime": "atime",
	"diratime": "nodiratime", "nodiratime": "diratime",
	"relatime": "norelatime", "norelatime": "relatime",
	"strictatime": "nostrictatime", "nostrictatime": "strictatime",
}

// mergeOptions keeps, of each flag and its opposite and of each key=value
// by key, the last given.
func mergeOptions(opts []string) []string {
	var out []string
	key := func(o string) string {
		if k, _, ok := strings.Cut(o, "="); ok {
			return k + "="
		}
		return o
	}
	for _, o := range opts {
		k := key(o)
		out = slices.DeleteFunc(out, func(x string) bool {
			return key(x) == k || (opposites[o] != "" && x == opposites[o])
		})
		out = append(out, o)
	}
	return out
}
