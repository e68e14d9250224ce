package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/volume"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/metadata"
)

// Kind is the metadata kind under which volume records are stored.
const Kind = "volumes"

// Modes of the store's directories: the root lets others reach a volume
// they know the path of (containers running as another user) but not list
// the volumes; a volume's own directories are world-readable, as Docker's.
const (
	rootMode   = 0o701
	volumeMode = 0o755
)

// validName is Docker's rule for local volume names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// record is a volume as stored in metadata.
type record struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
	// Labels and Options (the local driver's type, device, o) are as
	// created.
	Labels  map[string]string `json:"labels,omitempty"`
	Options map[string]string `json:"options,omitempty"`
	// Users are the containers created with the volume (sorted); the
	// volume cannot be removed while there are any.
	Users []string `json:"users,omitempty"`
	// MountedBy are the started containers that hold the driver-options
	// mount of the volume up (sorted).
	MountedBy []string `json:"mountedBy,omitempty"`
	// Populated is set once the volume has content, copied up or written:
	// only a volume never populated gets a copy-up.
	Populated bool `json:"populated,omitempty"`
}

// hasMount reports whether the volume is mounted from its driver options
// rather than being a plain directory.
func (r *record) hasMount() bool { return r.Options["type"] != "" || r.Options["device"] != "" }

// Store keeps the named volumes of the local driver under a root
// directory, one <root>/<name>/_data each, and their records in metadata.
// It is safe for concurrent use.
type Store struct {
	root string
	db   *metadata.DB
	// mu serialises the changes of records and directories: create,
	// remove, prune, Resolve and Release.
	mu sync.Mutex
	// volLocks serialises the mounts and copy-ups of one volume.
	volLocks keyedLock
}

// New opens the volume store at root (created with mode 0701 if needed),
// keeping its records in db. It repairs what a crash left half done: a
// record whose directories are missing gets them, a volume directory
// without a record is removed, and mount state recorded but no longer true
// (after a reboot) is forgotten.
func New(root string, db *metadata.DB) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("volume store %s: no metadata database: %w", root, errdefs.ErrInvalidArgument)
	}
	root = filepath.Clean(root)
	if err := os.MkdirAll(root, rootMode); err != nil {
		return nil, fmt.Errorf("volume store: %w", err)
	}
	if err := os.Chmod(root, rootMode); err != nil {
		return nil, fmt.Errorf("volume store: %w", err)
	}
	s := &Store{root: root, db: db}
	if err := s.repair(context.Background()); err != nil {
		return nil, fmt.Errorf("volume store %s: %w", root, err)
	}
	return s, nil
}

// Root returns the directory the volumes live in.
func (s *Store) Root() string { return s.root }

func (s *Store) dir(name string) string     { return filepath.Join(s.root, name) }
func (s *Store) dataDir(name string) string { return filepath.Join(s.root, name, "_data") }

// repair reconciles records, directories and mounts after a start.
func (s *Store) repair(ctx context.Context) error {
	recs, err := s.records()
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, r := range recs {
		known[r.Name] = true
		if err := s.makeDirs(r.Name); err != nil {
			return fmt.Errorf("repair volume %s: %w", r.Name, err)
		}
		if !r.hasMount() {
			continue
		}
		up, err := isMounted(s.dataDir(r.Name))
		if err != nil {
			return fmt.Errorf("repair volume %s: %w", r.Name, err)
		}
		switch {
		case !up && len(r.MountedBy) > 0:
			log.G(ctx).Info("volume no longer mounted, forgetting its mounts", "volume", r.Name, "containers", r.MountedBy)
			err = s.update(r.Name, func(r *record) error {
				r.MountedBy = nil
				if r.Options["type"] == "tmpfs" {
					r.Populated = false
				}
				return nil
			})
		case up && len(r.MountedBy) == 0:
			log.G(ctx).Info("unmounting volume mounted by no container", "volume", r.Name)
			err = unmountVolume(s.dataDir(r.Name))
		}
		if err != nil {
			return fmt.Errorf("repair volume %s: %w", r.Name, err)
		}
	}
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if known[e.Name()] || !e.IsDir() || !validName.MatchString(e.Name()) {
			continue
		}
		log.G(ctx).Info("removing volume directory without a record", "dir", s.dir(e.Name()))
		if err := s.removeDirs(e.Name()); err != nil {
			return err
		}
	}
	return nil
}

// records returns every volume record, by name.
func (s *Store) records() ([]record, error) {
	var recs []record
	err := s.db.View(func(tx *metadata.Tx) error {
		return tx.ForEachJSON(Kind, func(key string, raw []byte) error {
			var r record
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("volume %s: decode record: %w: %w", key, err, errdefs.ErrDataLoss)
			}
			recs = append(recs, r)
			return nil
		})
	})
	return recs, err
}

// get returns the record of name, or an ErrNotFound error with Docker's
// message.
func (s *Store) get(name string) (record, error) {
	var r record
	err := s.db.View(func(tx *metadata.Tx) error { return tx.GetJSON(Kind, name, &r) })
	if errdefs.IsNotFound(err) {
		return r, noSuchVolume(name)
	}
	return r, err
}

func noSuchVolume(name string) error {
	return fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
}

// update changes record name in one transaction.
func (s *Store) update(name string, fn func(*record) error) error {
	return s.db.Update(func(tx *metadata.Tx) error {
		var r record
		if err := tx.GetJSON(Kind, name, &r); err != nil {
			if errdefs.IsNotFound(err) {
				return noSuchVolume(name)
			}
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
		return tx.PutJSON(Kind, name, &r)
	})
}

// newRecord validates a create request and returns the record of the new
// volume; an empty name is replaced by a random one and the volume marked
// anonymous.
func newRecord(name, driver string, opts, labels map[string]string) (record, error) {
	if driver != "" && driver != DefaultDriver {
		return record{}, fmt.Errorf("error looking up volume plugin %s: plugin %q not found: %w", driver, driver, errdefs.ErrNotFound)
	}
	labels = maps.Clone(labels)
	if name == "" {
		name = randomName()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[AnonymousLabel] = ""
	} else if err := checkName(name); err != nil {
		return record{}, invalid("create %s: %v", name, err)
	}
	if err := checkOptions(opts); err != nil {
		return record{}, invalid("create %s: %v", name, err)
	}
	return record{Name: name, CreatedAt: time.Now().UTC().Truncate(time.Second), Labels: labels, Options: maps.Clone(opts)}, nil
}

// checkName applies the local driver's name rule.
func checkName(name string) error {
	if len(name) == 1 {
		return errors.New("volume name is too short, names should be at least two alphanumeric characters")
	}
	if !validName.MatchString(name) {
		return fmt.Errorf("%q includes invalid characters for a local volume name, only %q are allowed. If you intended to pass a host directory, use absolute path", name, "[a-zA-Z0-9][a-zA-Z0-9_.-]")
	}
	return nil
}

// checkOptions validates the local driver's options: type, device and o,
// which go together, as for mount(8).
func checkOptions(opts map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		switch k {
		case "type", "device", "o":
		case "size":
			return errors.New("quota size requested but no quota support")
		default:
			return fmt.Errorf("invalid option: %q", k)
		}
	}
	need := map[string][]string{"device": {"type"}, "type": {"device"}, "o": {"device", "type"}}
	for _, k := range []string{"type", "device", "o"} {
		if _, ok := opts[k]; !ok {
			continue
		}
		for _, req := range need[k] {
			if _, ok := opts[req]; !ok {
				return fmt.Errorf("missing required option: %q", req)
			}
		}
	}
	if o, ok := opts["o"]; ok {
		if _, err := parseMountOptions(o); err != nil {
			return err
		}
	}
	return nil
}

func randomName() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// makeDirs makes (or repairs) the directories of volume name.
func (s *Store) makeDirs(name string) error {
	for _, d := range []string{s.dir(name), s.dataDir(name)} {
		if err := os.Mkdir(d, volumeMode); err != nil {
			if !errors.Is(err, fs.ErrExist) {
				return err
			}
			continue
		}
		if err := os.Chmod(d, volumeMode); err != nil {
			return err
		}
	}
	return nil
}

// removeDirs unmounts whatever is mounted in volume name's directory and
// removes it.
func (s *Store) removeDirs(name string) error {
	dir := s.dir(name)
	if err := unmountUnder(dir); err != nil {
		return fmt.Errorf("remove volume directory %s: %w", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove volume directory %s: %w", dir, err)
	}
	return nil
}

// toAPI returns the volume as the Engine API shows it.
func (s *Store) toAPI(r record) volume.Volume {
	labels, opts := maps.Clone(r.Labels), maps.Clone(r.Options)
	if labels == nil {
		labels = map[string]string{}
	}
	if opts == nil {
		opts = map[string]string{}
	}
	return volume.Volume{
		CreatedAt:  r.CreatedAt.Local().Format(time.RFC3339),
		Driver:     DefaultDriver,
		Labels:     labels,
		Mountpoint: s.dataDir(r.Name),
		Name:       r.Name,
		Options:    opts,
		Scope:      "local",
	}
}

// Create creates a volume of the local driver. An empty name gets a
// random 64-hex name and the anonymous label; an existing name is returned
// as it is, as Docker does. Options are the driver's type, device and o.
func (s *Store) Create(ctx context.Context, req volume.CreateRequest) (volume.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := newRecord(req.Name, req.Driver, req.DriverOpts, req.Labels)
	if err != nil {
		return volume.Volume{}, err
	}
	created := false
	err = s.db.Update(func(tx *metadata.Tx) error {
		var old record
		switch err := tx.GetJSON(Kind, r.Name, &old); {
		case err == nil:
			r = old
			return nil
		case !errdefs.IsNotFound(err):
			return err
		}
		created = true
		return tx.PutJSON(Kind, r.Name, &r)
	})
	if err != nil {
		return volume.Volume{}, fmt.Errorf("create %s: %w", r.Name, err)
	}
	if created {
		if err := s.makeDirs(r.Name); err != nil {
			s.dropRecords(ctx, []string{r.Name})
			return volume.Volume{}, fmt.Errorf("create %s: %w", r.Name, err)
		}
		log.G(ctx).Debug("volume created", "volume", r.Name)
	}
	return s.toAPI(r), nil
}

// dropRecords undoes the creation of volumes: records, then directories.
// Failures are logged; New finishes the job at the next start.
func (s *Store) dropRecords(ctx context.Context, names []string) {
	if len(names) == 0 {
		return
	}
	err := s.db.Update(func(tx *metadata.Tx) error {
		for _, n := range names {
			if err := tx.DeleteJSON(Kind, n); err != nil && !errdefs.IsNotFound(err) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		log.G(ctx).Warn("undo volume creation", "volumes", names, "error", err)
		return
	}
	for _, n := range names {
		if err := s.removeDirs(n); err != nil {
			log.G(ctx).Warn("undo volume creation", "volume", n, "error", err)
		}
	}
}

// Get returns volume name, or an ErrNotFound error ("get NAME: no such
// volume").
func (s *Store) Get(ctx context.Context, name string) (volume.Volume, error) {
	r, err := s.get(name)
	if err != nil {
		return volume.Volume{}, err
	}
	return s.toAPI(r), nil
}

// Users returns the containers created with volume name, which keep it
// from being removed (system df's reference count).
func (s *Store) Users(ctx context.Context, name string) ([]string, error) {
	r, err := s.get(name)
	return r.Users, err
}

// List returns the volumes that pass filters, by name: name (exact or a
// regular expression), driver, label (key or key=value, all must match),
// label! (none may match) and dangling (true: used by no container).
func (s *Store) List(ctx context.Context, filters map[string][]string) ([]volume.Volume, error) {
	if err := checkFilters(filters, "name", "driver", "label", "label!", "dangling"); err != nil {
		return nil, err
	}
	dangling, err := boolFilter(filters, "dangling")
	if err != nil {
		return nil, err
	}
	recs, err := s.records()
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	out := []volume.Volume{}
	for _, r := range recs {
		if !matchAny(filters["name"], r.Name) || !matchAny(filters["driver"], DefaultDriver) || !matchLabels(filters, r.Labels) {
			continue
		}
		if dangling != nil && *dangling != (len(r.Users) == 0) {
			continue
		}
		out = append(out, s.toAPI(r))
	}
	return out, nil
}

// checkFilters refuses filter keys other than allowed, with Docker's
// message.
func checkFilters(filters map[string][]string, allowed ...string) error {
	for _, k := range slices.Sorted(maps.Keys(filters)) {
		if !slices.Contains(allowed, k) {
			return invalid("invalid filter '%s'", k)
		}
	}
	return nil
}

// boolFilter returns the value of a boolean filter, nil if absent.
func boolFilter(filters map[string][]string, key string) (*bool, error) {
	vals := filters[key]
	if len(vals) == 0 {
		return nil, nil
	}
	if len(vals) > 1 {
		return nil, invalid("invalid filter '%s=%s'", key, strings.Join(vals, ","))
	}
	var b bool
	switch strings.ToLower(vals[0]) {
	case "true", "1":
		b = true
	case "false", "0":
	default:
		return nil, invalid("invalid filter '%s=%s'", key, vals[0])
	}
	return &b, nil
}

// matchAny reports whether s is one of pats or matches one as a regular
// expression; no patterns match everything.
func matchAny(pats []string, s string) bool {
	if len(pats) == 0 {
		return true
	}
	for _, p := range pats {
		if p == s {
			return true
		}
		if ok, err := regexp.MatchString(p, s); err == nil && ok {
			return true
		}
	}
	return false
}

// matchLabels applies the label (all must match) and label! (none may
// match) filters; a filter is "key" or "key=value".
func matchLabels(filters map[string][]string, labels map[string]string) bool {
	has := func(f string) bool {
		k, v, withValue := strings.Cut(f, "=")
		got, ok := labels[k]
		return ok && (!withValue || got == v)
	}
	for _, f := range filters["label"] {
		if !has(f) {
			return false
		}
	}
	for _, f := range filters["label!"] {
		if has(f) {
			return false
		}
	}
	return true
}

// Remove removes volume name and its content. A volume used by a
// container is refused with ErrConflict ("remove NAME: volume is in use -
// [ids]"), even with force; force only makes a missing volume no error.
func (s *Store) Remove(ctx context.Context, name string, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.get(name)
	if err != nil {
		if force && errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	if len(r.Users) > 0 {
		return fmt.Errorf("remove %s: volume is in use - [%s]: %w", name, strings.Join(r.Users, ", "), errdefs.ErrConflict)
	}
	return s.removeLocked(ctx, name)
}

// removeLocked deletes the record, then the directories (a crash between
// leaves a directory New removes).
func (s *Store) removeLocked(ctx context.Context, name string) error {
	err := s.db.Update(func(tx *metadata.Tx) error { return tx.DeleteJSON(Kind, name) })
	if err != nil {
		if errdefs.IsNotFound(err) {
			return noSuchVolume(name)
		}
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := s.removeDirs(name); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	log.G(ctx).Debug("volume removed", "volume", name)
	return nil
}

// Prune removes the volumes no container uses: by default only anonymous
// ones (Docker 23+), all of them with the filter all=true; label and
// label! filters narrow the choice. It returns the names removed and the
// bytes their content took.
func (s *Store) Prune(ctx context.Context, filters map[string][]string) (deleted []string, reclaimed uint64, err error) {
	if err := checkFilters(filters, "label", "label!", "all"); err != nil {
		return nil, 0, err
	}
	all, err := boolFilter(filters, "all")
	if err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs, err := s.records()
	if err != nil {
		return nil, 0, fmt.Errorf("prune volumes: %w", err)
	}
	var errs []error
	for _, r := range recs {
		if len(r.Users) > 0 || len(r.MountedBy) > 0 || !matchLabels(filters, r.Labels) {
			continue
		}
		if _, anon := r.Labels[AnonymousLabel]; !anon && (all == nil || !*all) {
			continue
		}
		size, _ := dirSize(s.dataDir(r.Name))
		if err := s.removeLocked(ctx, r.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, r.Name)
		reclaimed += uint64(size)
	}
	return deleted, reclaimed, errors.Join(errs...)
}

// Usage returns the size in bytes of every volume's content, for system
// df.
func (s *Store) Usage(ctx context.Context) (map[string]int64, error) {
	recs, err := s.records()
	if err != nil {
		return nil, fmt.Errorf("volume usage: %w", err)
	}
	out := make(map[string]int64, len(recs))
	for _, r := range recs {
		size, err := dirSize(s.dataDir(r.Name))
		if err != nil {
			log.G(ctx).Warn("volume size", "volume", r.Name, "error", err)
		}
		out[r.Name] = size
	}
	return out, nil
}

// dirSize sums the sizes of the regular files under dir, each inode once,
// staying on dir's filesystem.
func dirSize(dir string) (int64, error) {
	rootDev, ok := devOf(dir)
	if !ok {
		return 0, nil
	}
	seen := map[uint64]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		dev, ino, nlink := statIDs(info)
		if d.IsDir() && p != dir && dev != rootDev {
			return filepath.SkipDir
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		if nlink > 1 {
			if seen[ino] {
				return nil
			}
			seen[ino] = true
		}
		total += info.Size()
		return nil
	})
	return total, err
}

// addString inserts v into the sorted set s.
func addString(s []string, v string) []string {
	i := sort.SearchStrings(s, v)
	if i < len(s) && s[i] == v {
		return s
	}
	return slices.Insert(s, i, v)
}

// removeString deletes v from the sorted set s.
func removeString(s []string, v string) []string {
	i := sort.SearchStrings(s, v)
	if i < len(s) && s[i] == v {
		return slices.Delete(s, i, i+1)
	}
	return s
}

// keyedLock is a set of mutexes by key, made as needed and dropped when
// unused.
type keyedLock struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu sync.Mutex
	n  int
}

// lock locks key and returns its unlock.
func (k *keyedLock) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.n++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.n--; e.n == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
