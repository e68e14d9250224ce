// Package daemon is berthd's service layer: it opens the stores under the
// data root (metadata, content, snapshots), wires the image service and the
// registry client to them, and offers one method per verb of the Engine API
// to the API servers. It owns the event bus: every verb that changes an
// object publishes an event.
//
// Layout of the data root (mode 0710):
//
//	metadata.db          bbolt: images, tags, snapshots, leases
//	content/blobs/sha256 content-addressed blobs
//	snapshots/<id>/      unpacked layers and writable layers
//	containers/ volumes/ (later issues)
//	tmp/                 downloads in progress
//	engine-id            the daemon's ID, as /info reports it
//
// The exec root holds sockets and per-container runtime and shim state.
package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berth-project/berth/internal/content"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/network"
	"github.com/berth-project/berth/internal/registry"
	"github.com/berth-project/berth/internal/snapshot"
	"github.com/berth-project/berth/internal/snapshot/native"
	"github.com/berth-project/berth/internal/snapshot/overlay"
	"github.com/berth-project/berth/internal/topdir"
	"github.com/berth-project/berth/internal/volume"
)

// Storage driver names.
const (
	DriverOverlay = "overlay"
	DriverNative  = "native"
)

// Daemon is berthd's state and services. Its methods are safe for
// concurrent use.
type Daemon struct {
	id      string
	started time.Time
	driver  string
	db      *metadata.DB
	content *content.Store
	snap    snapshot.Snapshotter
	events  *Events

	imgs *image.Service
	ctrs *containers
	net  *network.Manager
	vols *volume.Store

	// bld is the Dockerfile builder, made on first use (build.go).
	bld lazyBuilder
	// ctxDirs are where build contexts are unpacked (buildcontextdirs.go).
	ctxDirs contextDirPool

	// execs are the exec processes by exec ID (exec.go; zero value ready).
	execs execTable

	// runCtx ends when the daemon closes: monitors and pending restarts
	// stop, the containers go on (live restore).
	runCtx    context.Context
	runCancel context.CancelFunc
	wg        sync.WaitGroup

	mu  sync.Mutex
	cfg Config
}

// New creates the data and exec roots if needed, opens the stores and
// returns the daemon. Close it to release them.
func New(ctx context.Context, cfg Config) (_ *Daemon, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := makeRoot(cfg.DataRoot, 0o710); err != nil {
		return nil, err
	}
	if err := makeRoot(cfg.ExecRoot, 0o711); err != nil {
		return nil, err
	}
	for _, dir := range []string{"content", "snapshots", "containers", "volumes", "tmp"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataRoot, dir), 0o700); err != nil {
			return nil, fmt.Errorf("data root: %w", err)
		}
	}
	for _, dir := range []string{"runtime", "shim", "containers"} {
		if err := os.MkdirAll(filepath.Join(cfg.ExecRoot, dir), 0o700); err != nil {
			return nil, fmt.Errorf("exec root: %w", err)
		}
	}
	markTopDirs(ctx, cfg)
	if err := findBinaries(&cfg); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, started: time.Now(), events: NewEvents(), ctrs: newContainers()}
	d.runCtx, d.runCancel = context.WithCancel(context.WithoutCancel(ctx))
	d.ctxDirs.root, d.ctxDirs.tmp = filepath.Join(cfg.DataRoot, "build-contexts"), filepath.Join(cfg.DataRoot, "tmp")
	if d.id, err = engineID(cfg.DataRoot); err != nil {
		return nil, err
	}
	d.db, err = metadata.Open(filepath.Join(cfg.DataRoot, "metadata.db"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	d.content, err = content.Open(filepath.Join(cfg.DataRoot, "content"), filepath.Join(cfg.DataRoot, "tmp"))
	if err != nil {
		return nil, err
	}
	snapRoot := filepath.Join(cfg.DataRoot, "snapshots")
	d.driver, err = chooseDriver(ctx, cfg.StorageDriver, snapRoot)
	if err != nil {
		return nil, err
	}
	if d.driver, err = keepDriver(cfg.DataRoot, cfg.StorageDriver, d.driver); err != nil {
		return nil, err
	}
	if d.driver == DriverOverlay {
		d.snap, err = overlay.New(snapRoot, d.db.Bolt())
	} else {
		d.snap, err = native.New(snapRoot, d.db.Bolt())
	}
	if err != nil {
		return nil, err
	}
	d.imgs = image.New(image.Config{
		Content:     d.content,
		DB:          d.db,
		Snapshotter: d.snap,
		Overlay:     d.driver == DriverOverlay,
		Registry:    newRegistryClient(cfg),
		TmpDir:      filepath.Join(cfg.DataRoot, "tmp"),
		InUse:       d.imageUsers,
	})
	if d.vols, err = volume.New(filepath.Join(cfg.DataRoot, "volumes"), d.db); err != nil {
		return nil, err
	}
	if d.net, err = newNetworkManager(ctx, cfg, d.db); err != nil {
		return nil, err
	}
	if err := d.loadContainers(); err != nil {
		return nil, err
	}
	d.restoreContainers(ctx)
	err = d.vols.Reconcile(ctx, func(id string) bool {
		_, err := d.ctrs.get(id)
		return err == nil
	}, func(id string) bool {
		e, err := d.ctrs.get(id)
		if err != nil {
			return false
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.c.State.Running()
	})
	if err != nil {
		log.G(ctx).Warn("reconcile volumes", "error", err)
	}
	log.G(ctx).Info("daemon ready", "data-root", cfg.DataRoot, "exec-root", cfg.ExecRoot, "storage-driver", d.driver)
	return d, nil
}

// markTopDirs marks the directories that get a subtree per container or
// snapshot as tops of unrelated trees (see package topdir). It is a
// placement hint only: a failure is logged.
func markTopDirs(ctx context.Context, cfg Config) {
	dirs := []string{
		filepath.Join(cfg.DataRoot, "containers"), filepath.Join(cfg.DataRoot, "snapshots"),
		filepath.Join(cfg.DataRoot, "volumes"), filepath.Join(cfg.DataRoot, "tmp"),
	}
	for _, dir := range []string{"runtime", "shim", "containers"} {
		dirs = append(dirs, filepath.Join(cfg.ExecRoot, dir))
	}
	for _, dir := range dirs {
		if err := topdir.Mark(dir); err != nil {
			log.G(ctx).Debug("spread subdirectories", "error", err)
		}
	}
}

// chooseDriver returns the storage driver to use: the one asked for, or
// overlay when the kernel can mount it on root, else native.
func chooseDriver(ctx context.Context, want, root string) (string, error) {
	switch want {
	case "overlay", "overlay2":
		if err := overlay.Supported(root); err != nil {
			return "", fmt.Errorf("storage driver overlay: %w", err)
		}
		return DriverOverlay, nil
	case "native", "vfs":
		return DriverNative, nil
	case "":
		if err := overlay.Supported(root); err != nil {
			log.G(ctx).Warn("overlay is not usable, using the native storage driver", "error", err)
			return DriverNative, nil
		}
		return DriverOverlay, nil
	}
	return "", fmt.Errorf("unknown storage driver %q: %w", want, errdefs.ErrInvalidArgument)
}

// newRegistryClient returns the registry client for cfg's registry settings.
func newRegistryClient(cfg Config) *registry.Client {
	return registry.New(registry.Options{
		// The daemon never reads a user's credentials: clients send them
		// with each request (X-Registry-Auth). This directory has none.
		ConfigDir: filepath.Join(cfg.DataRoot, "registry"),
		Insecure:  cfg.InsecureRegistries,
		Mirrors:   cfg.RegistryMirrors,
	})
}

// keepDriver makes the storage driver a property of the data root: the
// first start records chosen in <dataRoot>/storage-driver, later starts use
// the recorded one, and asking for another is an error (the images' layers
// live in the recorded driver's snapshots).
func keepDriver(dataRoot, asked, chosen string) (string, error) {
	path := filepath.Join(dataRoot, "storage-driver")
	data, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err):
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(chosen+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("record storage driver: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return "", fmt.Errorf("record storage driver: %w", err)
		}
		return chosen, nil
	case err != nil:
		return "", fmt.Errorf("read storage driver: %w", err)
	}
	recorded := strings.TrimSpace(string(data))
	if recorded != DriverOverlay && recorded != DriverNative {
		return "", fmt.Errorf("%s names an unknown storage driver %q: %w", path, recorded, errdefs.ErrInvalidArgument)
	}
	if asked != "" && chosen != recorded {
		return "", fmt.Errorf("data root %s holds the images of storage driver %q: start with --storage-driver %s or use another --data-root: %w",
			dataRoot, recorded, recorded, errdefs.ErrInvalidArgument)
	}
	return recorded, nil
}

// makeRoot creates dir with mode and makes sure an existing one has it.
func makeRoot(dir string, mode os.FileMode) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	return nil
}

// engineID returns the daemon ID kept in root/engine-id, making one on the
// first start (written to a temporary file and renamed into place).
func engineID(root string) (string, error) {
	path := filepath.Join(root, "engine-id")
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read engine id: %w", err)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	h := hex.EncodeToString(b[:])
	id := fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("write engine id: %w", err)
	}
	_, werr := f.WriteString(id + "\n")
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write engine id: %w", werr)
	}
	return id, nil
}

// Close releases the stores. Callers must have stopped using the daemon.
// Containers keep running under their shims (live restore) unless the
// configuration turned live restore off: then they are stopped first.
func (d *Daemon) Close() error {
	var errs []error
	if d.ctrs != nil && !d.cfg.LiveRestore {
		d.stopAll()
	}
	if d.runCancel != nil {
		d.runCancel()
		d.wg.Wait()
	}
	if d.ctrs != nil {
		for _, e := range d.ctrs.all() {
			e.mu.Lock()
			if e.shim != nil {
				e.shim.Close()
			}
			e.mu.Unlock()
		}
	}
	if d.net != nil {
		errs = append(errs, d.net.Close())
	}
	if d.snap != nil {
		errs = append(errs, d.snap.Close())
	}
	if d.db != nil {
		errs = append(errs, d.db.Close())
	}
	return errors.Join(errs...)
}

// Reload applies the settings of cfg that can change while running: the
// registry mirrors and insecure registries (a new registry client for the
// operations that start afterwards) and the log level, which the caller
// applies to its handler. Other changes are ignored and logged.
func (d *Daemon) Reload(ctx context.Context, cfg Config) error {
	if _, err := ParseLogLevel(cfg.LogLevel); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.cfg
	if !equalStrings(old.RegistryMirrors, cfg.RegistryMirrors) || !equalStrings(old.InsecureRegistries, cfg.InsecureRegistries) {
		d.imgs.SetRegistry(newRegistryClient(cfg))
	}
	d.cfg.LogLevel = cfg.LogLevel
	d.cfg.RegistryMirrors = cfg.RegistryMirrors
	d.cfg.InsecureRegistries = cfg.InsecureRegistries
	d.publish(Event{Type: "daemon", Action: "reload", ID: d.id, Attributes: map[string]string{
		"log-level":           cfg.LogLevel,
		"registry-mirrors":    fmt.Sprint(cfg.RegistryMirrors),
		"insecure-registries": fmt.Sprint(cfg.InsecureRegistries),
	}})
	log.G(ctx).Info("configuration reloaded", "log-level", cfg.LogLevel,
		"registry-mirrors", cfg.RegistryMirrors, "insecure-registries", cfg.InsecureRegistries)
	return nil
}

// Config returns the daemon's current configuration.
func (d *Daemon) Config() Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Events returns the event bus.
func (d *Daemon) Events() *Events { return d.events }

// ID returns the daemon's persistent ID.
func (d *Daemon) ID() string { return d.id }

// StorageDriver returns the name of the storage driver in use.
func (d *Daemon) StorageDriver() string { return d.driver }

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
