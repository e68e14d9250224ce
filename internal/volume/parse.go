package volume

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/mount"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
)

// Mount types, as container.Mount.Type holds them.
const (
	TypeVolume = "volume"
	TypeBind   = "bind"
	TypeTmpfs  = "tmpfs"
)

// Words this package keeps in container.Mount.Options of volume and bind
// mounts (tmpfs mounts keep their tmpfs options there instead). Docker's
// inspect does not show Options, so they cost the user nothing.
const (
	// OptNoCopy disables the copy-up of a volume (-v x:/d:nocopy,
	// --mount volume-nocopy, --volumes-from).
	OptNoCopy = "nocopy"
	// OptNonRecursive binds without submounts (bind-recursive=disabled).
	OptNonRecursive = "bind-nonrecursive"
	// OptReadOnlyNonRecursive makes only the top of a read-only bind
	// read-only (bind-recursive=writable).
	OptReadOnlyNonRecursive = "ro-nonrecursive"
	// OptReadOnlyForceRecursive demands that a read-only bind be read-only
	// in every submount (bind-recursive=readonly).
	OptReadOnlyForceRecursive = "ro-forcerecursive"
)

// AnonymousLabel marks a volume created without a name, as Docker (23+)
// does; prune removes only these unless asked for all.
const AnonymousLabel = "com.docker.volume.anonymous"

// DefaultDriver is the only volume driver berth has.
const DefaultDriver = "local"

// request is one mount of a create request after parsing, before any
// volume is created.
type request struct {
	m container.Mount
	// driver is the volume driver asked for ("" = default).
	driver string
	// driverOpts and labels are used when the volume is created here.
	driverOpts map[string]string
	labels     map[string]string
	// createSource makes a missing bind source directory (-v, or --mount
	// with bind-create-src).
	createSource bool
}

// invalid returns an ErrInvalidArgument error whose text, without the
// class, is msg: Docker's wording where it has one.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

var (
	rwModes          = map[string]bool{"rw": true, "ro": true}
	labelModes       = map[string]bool{"z": true, "Z": true}
	consistencyModes = map[string]bool{"consistent": true, "cached": true, "delegated": true}
	propagations     = map[string]bool{"private": true, "rprivate": true, "shared": true, "rshared": true, "slave": true, "rslave": true}
)

// validMode reports whether mode is a valid -v mode string: a comma list
// with at most one word of each kind (rw/ro, z/Z, a propagation, nocopy, a
// consistency).
func validMode(mode string) bool {
	if mode == "" {
		return true
	}
	var rw, label, prop, cp, cons int
	for _, o := range strings.Split(mode, ",") {
		switch {
		case rwModes[o]:
			rw++
		case labelModes[o]:
			label++
		case propagations[o]:
			prop++
		case o == OptNoCopy:
			cp++
		case consistencyModes[o]:
			cons++
		default:
			return false
		}
	}
	return rw <= 1 && label <= 1 && prop <= 1 && cp <= 1 && cons <= 1
}

// modeHas reports whether the mode string has the word w.
func modeHas(mode, w string) bool {
	return mode != "" && slices.Contains(strings.Split(mode, ","), w)
}

// modePropagation returns the propagation word of mode, or "".
func modePropagation(mode string) string {
	for _, o := range strings.Split(mode, ",") {
		if propagations[o] {
			return o
		}
	}
	return ""
}

// checkTarget validates a mount's container path the way Docker does.
func checkTarget(target string) error {
	if target == "" {
		return errors.New("field Target must not be empty")
	}
	if path.Clean(target) == "/" {
		return errors.New("invalid specification: destination can't be '/'")
	}
	if !path.IsAbs(target) {
		return fmt.Errorf("invalid mount path: '%s' mount path must be absolute", target)
	}
	return nil
}

// parseBind parses one HostConfig.Binds entry (docker run -v):
// "/ctr", "name:/ctr[:mode]" or "/host:/ctr[:mode]". volumeDriver is
// HostConfig.VolumeDriver.
func parseBind(raw, volumeDriver string) (request, error) {
	badSpec := func() error { return invalid("invalid volume specification: '%s'", raw) }
	parts := strings.SplitN(raw, ":", 4)
	if parts[0] == "" {
		return request{}, badSpec()
	}
	var source, target, mode string
	switch len(parts) {
	case 1:
		target = parts[0]
	case 2:
		if validMode(parts[1]) {
			// "/ctr:ro": a mode needs a source.
			return request{}, badSpec()
		}
		source, target = parts[0], parts[1]
	case 3:
		source, target, mode = parts[0], parts[1], parts[2]
	default:
		return request{}, badSpec()
	}
	if !validMode(mode) {
		return request{}, invalid("invalid mode: %s", mode)
	}
	typ := TypeVolume
	if path.IsAbs(source) {
		typ = TypeBind
	}
	fail := func(err error) (request, error) {
		return request{}, invalid("invalid volume specification: '%s': invalid mount config for type %q: %v", raw, typ, err)
	}
	if err := checkTarget(target); err != nil {
		return fail(err)
	}
	r := request{
		m: container.Mount{
			Type:        typ,
			Destination: path.Clean(target),
			Mode:        mode,
			RW:          !modeHas(mode, "ro"),
		},
	}
	prop := modePropagation(mode)
	switch typ {
	case TypeBind:
		if modeHas(mode, OptNoCopy) {
			return fail(errors.New("field VolumeOptions must not be specified"))
		}
		r.m.Source = path.Clean(source)
		r.m.Propagation = prop
		if prop == "" {
			r.m.Propagation = "rprivate"
		}
		r.createSource = true
	case TypeVolume:
		if prop != "" {
			return fail(errors.New("field BindOptions must not be specified"))
		}
		r.m.Name = source
		r.m.Anonymous = source == ""
		r.driver = volumeDriver
		if modeHas(mode, OptNoCopy) {
			r.m.Options = []string{OptNoCopy}
		}
	}
	return r, nil
}

// parseMount parses and validates one HostConfig.Mounts entry (docker run
// --mount). A bind source must exist unless CreateMountpoint is set.
func parseMount(spec mount.Mount) (request, error) {
	fail := func(err error) (request, error) {
		return request{}, invalid("invalid mount config for type %q: %v", spec.Type, err)
	}
	if err := checkTarget(spec.Target); err != nil {
		return fail(err)
	}
	r := request{
		m: container.Mount{
			Type:        string(spec.Type),
			Destination: path.Clean(spec.Target),
			RW:          !spec.ReadOnly,
		},
	}
	if spec.ImageOptions != nil && spec.Type != mount.TypeImage {
		return fail(errors.New("field ImageOptions must not be specified"))
	}
	switch spec.Type {
	case mount.TypeBind:
		if spec.Source == "" {
			return fail(errors.New("field Source must not be empty"))
		}
		if spec.VolumeOptions != nil {
			return fail(errors.New("field VolumeOptions must not be specified"))
		}
		if spec.TmpfsOptions != nil {
			return fail(errors.New("field TmpfsOptions must not be specified"))
		}
		if !path.IsAbs(spec.Source) {
			return fail(fmt.Errorf("invalid mount path: '%s' mount path must be absolute", spec.Source))
		}
		r.m.Source = path.Clean(spec.Source)
		r.m.Propagation = "rprivate"
		if o := spec.BindOptions; o != nil {
			if o.Propagation != "" {
				if !propagations[string(o.Propagation)] {
					return fail(fmt.Errorf("invalid propagation mode: %s", o.Propagation))
				}
				r.m.Propagation = string(o.Propagation)
			}
			if o.NonRecursive {
				r.m.Options = append(r.m.Options, OptNonRecursive)
			}
			if o.ReadOnlyNonRecursive && o.ReadOnlyForceRecursive {
				return fail(errors.New("cannot set both ReadOnlyNonRecursive and ReadOnlyForceRecursive"))
			}
			if (o.ReadOnlyNonRecursive || o.ReadOnlyForceRecursive) && !spec.ReadOnly {
				return fail(errors.New("option ReadOnlyNonRecursive and ReadOnlyForceRecursive require ReadOnly"))
			}
			if o.ReadOnlyForceRecursive && o.NonRecursive {
				return fail(errors.New("option ReadOnlyForceRecursive cannot be used with NonRecursive"))
			}
			if o.ReadOnlyNonRecursive {
				r.m.Options = append(r.m.Options, OptReadOnlyNonRecursive)
			}
			if o.ReadOnlyForceRecursive {
				r.m.Options = append(r.m.Options, OptReadOnlyForceRecursive)
			}
			r.createSource = o.CreateMountpoint
		}
		if _, err := os.Stat(r.m.Source); err != nil {
			if !os.IsNotExist(err) {
				return fail(err)
			}
			if !r.createSource {
				return fail(fmt.Errorf("bind source path does not exist: %s", r.m.Source))
			}
		}
	case mount.TypeVolume:
		if spec.BindOptions != nil {
			return fail(errors.New("field BindOptions must not be specified"))
		}
		if spec.TmpfsOptions != nil {
			return fail(errors.New("field TmpfsOptions must not be specified"))
		}
		if spec.Source == "" && spec.ReadOnly {
			return fail(errors.New("must not set ReadOnly mode when using anonymous volumes"))
		}
		r.m.Name = spec.Source
		r.m.Anonymous = spec.Source == ""
		if o := spec.VolumeOptions; o != nil {
			if o.Subpath != "" {
				if spec.Source == "" {
					return fail(errors.New("must not set Subpath when using anonymous volumes"))
				}
				return request{}, fmt.Errorf("invalid mount config for type %q: volume subpaths are not supported: %w", spec.Type, errdefs.ErrNotImplemented)
			}
			if o.NoCopy {
				r.m.Options = []string{OptNoCopy}
			}
			if o.DriverConfig != nil {
				r.driver = o.DriverConfig.Name
				r.driverOpts = maps.Clone(o.DriverConfig.Options)
			}
			r.labels = maps.Clone(o.Labels)
		}
	case mount.TypeTmpfs:
		if spec.BindOptions != nil {
			return fail(errors.New("field BindOptions must not be specified"))
		}
		if spec.VolumeOptions != nil {
			return fail(errors.New("field VolumeOptions must not be specified"))
		}
		if spec.Source != "" {
			return fail(errors.New("field Source must not be specified"))
		}
		opts, err := tmpfsOptions(spec.TmpfsOptions)
		if err != nil {
			return fail(err)
		}
		r.m.Options = opts
	case mount.TypeImage:
		return request{}, fmt.Errorf("invalid mount config for type %q: image mounts are not supported: %w", spec.Type, errdefs.ErrNotImplemented)
	default:
		return fail(errors.New("mount type unknown"))
	}
	return r, nil
}

// tmpfsOptions turns --mount's tmpfs options into mount options: mode in
// octal, size with the largest of g/m/k that divides it, and the exec or
// noexec flags Docker accepts.
func tmpfsOptions(o *mount.TmpfsOptions) ([]string, error) {
	if o == nil {
		return nil, nil
	}
	var out []string
	if o.Mode != 0 {
		out = append(out, fmt.Sprintf("mode=%o", uint32(o.Mode)))
	}
	if o.SizeBytes < 0 {
		return nil, fmt.Errorf("invalid tmpfs size %d", o.SizeBytes)
	}
	if size := o.SizeBytes; size != 0 {
		suffix := ""
		for _, u := range []struct {
			s string
			n int64
		}{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
			if size%u.n == 0 {
				size, suffix = size/u.n, u.s
				break
			}
		}
		out = append(out, fmt.Sprintf("size=%d%s", size, suffix))
	}
	for _, opt := range o.Options {
		if len(opt) < 1 || len(opt) > 2 {
			return nil, errors.New("invalid option array length")
		}
		if opt[0] != "exec" && opt[0] != "noexec" {
			return nil, errors.New("invalid option: " + opt[0])
		}
		out = append(out, strings.Join(opt, "="))
	}
	return out, nil
}

// parseVolumesFrom splits a HostConfig.VolumesFrom entry ("ctr", "ctr:ro",
// "ctr:rw") into the container and whether its mounts stay writable.
func parseVolumesFrom(spec string) (id string, rw bool, err error) {
	if spec == "" {
		return "", false, invalid("volumes-from specification cannot be an empty string")
	}
	id, mode, _ := strings.Cut(spec, ":")
	if mode == "" {
		return id, true, nil
	}
	// Propagation and copy words are refused: the mounts keep the source
	// container's.
	if !validMode(mode) || modePropagation(mode) != "" || modeHas(mode, OptNoCopy) {
		return "", false, invalid("invalid mode: %s", mode)
	}
	return id, !modeHas(mode, "ro"), nil
}
