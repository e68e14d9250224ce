package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	api "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/metadata"
)

// Resolve turns a create request's mounts into the container's mounts, as
// Docker does at create:
//
//   - hc.VolumesFrom: each entry ("ctr", "ctr:ro", "ctr:rw") gives the
//     mounts volumesFrom holds for it (looked up by the daemon), read-only
//     with ":ro", never copied up;
//   - hc.Binds (-v) and hc.Mounts (--mount) replace those at the same
//     destination; two of them at one destination, or one at a
//     destination of hc.Tmpfs, is "Duplicate mount point";
//   - cfg.Volumes (the image's VOLUME and -v /path) become anonymous
//     volumes where nothing else is mounted.
//
// Named volumes that do not exist are created (with --mount's driver
// options and labels), anonymous ones always, and containerID is recorded
// as a user of every volume it gets. A -v bind source that is missing is
// made (a directory, mode 0755); a --mount one is refused unless
// bind-create-src was given. Bad input is an ErrInvalidArgument error with
// Docker's message. On error nothing this call made is left.
//
// The mounts are returned parents first (by depth of destination).
func (s *Store) Resolve(ctx context.Context, containerID string, cfg *api.Config, hc *api.HostConfig, volumesFrom map[string][]container.Mount) ([]container.Mount, error) {
	if containerID == "" {
		return nil, invalid("resolve mounts: empty container id")
	}
	if hc == nil {
		hc = &api.HostConfig{}
	}
	reqs, err := planMounts(cfg, hc, volumesFrom)
	if err != nil {
		return nil, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	// Records of the volumes to create, validated before anything changes.
	fresh := map[int]record{}
	for i, r := range reqs {
		if r.m.Type != TypeVolume || r.fromOther {
			continue
		}
		rec, err := newRecord(r.m.Name, r.driver, r.driverOpts, r.labels)
		if err != nil {
			return nil, err
		}
		fresh[i] = rec
		reqs[i].m.Name = rec.Name
	}

	var created, joined []string
	err = s.db.Update(func(tx *metadata.Tx) error {
		created, joined = nil, nil
		for i, r := range reqs {
			if r.m.Type != TypeVolume {
				continue
			}
			name := r.m.Name
			var rec record
			switch err := tx.GetJSON(Kind, name, &rec); {
			case err == nil:
			case !errdefs.IsNotFound(err):
				return err
			case r.fromOther:
				return noSuchVolume(name)
			default:
				rec = fresh[i]
				created = append(created, name)
			}
			if !slices.Contains(rec.Users, containerID) {
				rec.Users = addString(rec.Users, containerID)
				if !slices.Contains(created, name) {
					joined = append(joined, name)
				}
			}
			if err := tx.PutJSON(Kind, name, &rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, err // Docker's "get NAME: no such volume"
		}
		return nil, fmt.Errorf("resolve mounts: %w", err)
	}

	var madeDirs []string
	undo := func() {
		s.dropUsers(ctx, containerID, joined)
		s.dropRecords(ctx, created)
		for _, d := range slices.Backward(madeDirs) {
			os.Remove(d)
		}
	}
	for _, name := range created {
		if err := s.makeDirs(name); err != nil {
			undo()
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
	}
	out := make([]container.Mount, 0, len(reqs))
	for _, r := range reqs {
		m := r.m
		switch m.Type {
		case TypeVolume:
			m.Source = s.dataDir(m.Name)
			m.Driver = DefaultDriver
			if m.Mode == "" && !r.fromOther && !r.fromImage {
				// Docker's default for local volumes given with -v or
				// --mount (an SELinux relabel where there is SELinux).
				m.Mode = "z"
			}
		case TypeBind:
			if r.createSource {
				dirs, err := mkdirAllTracked(m.Source)
				madeDirs = append(madeDirs, dirs...)
				if err != nil {
					undo()
					return nil, fmt.Errorf("create bind source %s: %w", m.Source, err)
				}
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// dropUsers removes containerID from the users of volumes names.
func (s *Store) dropUsers(ctx context.Context, containerID string, names []string) {
	if len(names) == 0 {
		return
	}
	err := s.db.Update(func(tx *metadata.Tx) error {
		for _, n := range names {
			var r record
			if err := tx.GetJSON(Kind, n, &r); err != nil {
				continue
			}
			r.Users = removeString(r.Users, containerID)
			if err := tx.PutJSON(Kind, n, &r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		log.G(ctx).Warn("undo volume users", "volumes", names, "error", err)
	}
}

// planned is a parsed mount with where it came from.
type planned struct {
	request
	// fromOther marks a volume of another container (--volumes-from):
	// it must exist.
	fromOther bool
	// fromImage marks an anonymous volume of cfg.Volumes.
	fromImage bool
}

// planMounts parses and merges every source of mounts, with Docker's
// precedence and duplicate checks, without side effects. Bind sources of
// --mount are checked for existence here.
func planMounts(cfg *api.Config, hc *api.HostConfig, volumesFrom map[string][]container.Mount) ([]planned, error) {
	byDest := map[string]planned{}
	var order []string
	put := func(p planned) {
		if _, ok := byDest[p.m.Destination]; !ok {
			order = append(order, p.m.Destination)
		}
		byDest[p.m.Destination] = p
	}

	for _, spec := range hc.VolumesFrom {
		_, rw, err := parseVolumesFrom(spec)
		if err != nil {
			return nil, err
		}
		ms, ok := volumesFrom[spec]
		if !ok {
			id, _, _ := strings.Cut(spec, ":")
			return nil, fmt.Errorf("%s: %w", "No such container: "+id, errdefs.ErrNotFound) // Docker's capital
		}
		for _, m := range ms {
			m.RW = m.RW && rw
			m.Mode = ""
			m.Options = slices.Clone(m.Options)
			if m.Type == TypeVolume && !slices.Contains(m.Options, OptNoCopy) {
				m.Options = append(m.Options, OptNoCopy)
			}
			put(planned{request: request{m: m}, fromOther: m.Type == TypeVolume})
		}
	}

	tmpfs := map[string]bool{}
	for dest := range hc.Tmpfs {
		tmpfs[path.Clean(dest)] = true
	}
	explicit := map[string]bool{}
	add := func(r request) error {
		if explicit[r.m.Destination] || tmpfs[r.m.Destination] {
			return invalid("Duplicate mount point: %s", r.m.Destination)
		}
		explicit[r.m.Destination] = true
		put(planned{request: r})
		return nil
	}
	for _, b := range hc.Binds {
		r, err := parseBind(b, hc.VolumeDriver)
		if err != nil {
			return nil, err
		}
		if err := add(r); err != nil {
			return nil, err
		}
	}
	for _, spec := range hc.Mounts {
		r, err := parseMount(spec)
		if err != nil {
			return nil, err
		}
		if r.m.Type == TypeVolume && r.driver == "" {
			r.driver = hc.VolumeDriver
		}
		if err := add(r); err != nil {
			return nil, err
		}
	}

	if cfg != nil {
		for _, dest := range slices.Sorted(maps.Keys(cfg.Volumes)) {
			if err := checkTarget(dest); err != nil {
				return nil, invalid("invalid volume specification: '%s': invalid mount config for type %q: %v", dest, TypeVolume, err)
			}
			clean := path.Clean(dest)
			if _, ok := byDest[clean]; ok || tmpfs[clean] {
				continue
			}
			put(planned{
				request:   request{m: container.Mount{Type: TypeVolume, Destination: clean, RW: true, Anonymous: true}, driver: hc.VolumeDriver},
				fromImage: true,
			})
		}
	}

	out := make([]planned, 0, len(order))
	for _, d := range order {
		out = append(out, byDest[d])
	}
	sort.SliceStable(out, func(i, j int) bool { return depth(out[i].m.Destination) < depth(out[j].m.Destination) })
	return out, nil
}

// depth is the number of components of a clean absolute path.
func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// mkdirAllTracked makes dir and its missing parents with mode 0755 and
// returns the directories it made, parents first.
func mkdirAllTracked(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	var made []string
	for _, d := range slices.Backward(missing) {
		if err := os.Mkdir(d, 0o755); err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			return made, err
		}
		made = append(made, d)
	}
	return made, nil
}
