package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	api "github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/oci"
	"github.com/berth-project/berth/internal/snapshot"
)

// Paths of a container's files.
func (d *Daemon) ctrDir(id string) string    { return filepath.Join(d.cfg.DataRoot, "containers", id) }
func (d *Daemon) bundleDir(id string) string { return filepath.Join(d.cfg.ExecRoot, "containers", id) }
func (d *Daemon) shimDir(id string) string {
	return filepath.Join(d.cfg.ExecRoot, "shim", container.ShortID(id))
}
func (d *Daemon) runtimeRoot() string { return filepath.Join(d.cfg.ExecRoot, "runtime") }

// snapshotKey names a container's writable layer.
func snapshotKey(id string) string { return "container-" + id }

// CreateContainer creates a container from opts: its record, its writable
// layer and its directory. Nothing runs until StartContainer. On failure
// nothing of it is left.
func (d *Daemon) CreateContainer(ctx context.Context, opts CreateContainerOptions) (res CreateContainerResult, err error) {
	if opts.Config == nil {
		return res, fmt.Errorf("config cannot be empty in order to create a container: %w", errdefs.ErrInvalidArgument)
	}
	cfg := *opts.Config
	hc := &api.HostConfig{}
	if opts.HostConfig != nil {
		c := *opts.HostConfig
		hc = &c
	}
	if err := validateHostConfig(hc); err != nil {
		return res, err
	}
	id := container.NewID()
	var name string
	if opts.Name != "" {
		if name, err = container.ValidateName(opts.Name); err != nil {
			return res, err
		}
		if err := d.ctrs.reserve(name, id); err != nil {
			return res, err
		}
	} else {
		name = d.ctrs.generateName(id)
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
			d.ctrs.release(name, id)
		}
	}()

	if cfg.Image == "" {
		return res, fmt.Errorf("no image specified: %w", errdefs.ErrInvalidArgument)
	}
	img, err := d.imgs.Resolve(ctx, cfg.Image)
	if err != nil {
		return res, err
	}
	imgCfg, err := d.imgs.ConfigOf(ctx, img)
	if err != nil {
		return res, err
	}
	if opts.Platform != nil && opts.Platform.Architecture != "" && opts.Platform.Architecture != imgCfg.Architecture {
		return res, fmt.Errorf("image with reference %s was found but its platform (%s/%s) does not match the specified platform (%s/%s): %w",
			cfg.Image, imgCfg.OS, imgCfg.Architecture, opts.Platform.OS, opts.Platform.Architecture, errdefs.ErrNotFound)
	}
	container.MergeImageConfig(&cfg, imgCfg.Config, imageHealthcheck(ctx, d, img))
	// docker run --entrypoint "" sends [""]: no entrypoint, as Docker
	// resets it after the merge.
	if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		cfg.Entrypoint = nil
	}
	path, args, err := container.Command(&cfg)
	if err != nil {
		return res, err
	}
	if hc.NetworkMode == "" {
		hc.NetworkMode = "default"
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = "json-file"
	}
	if hc.IpcMode == "" {
		hc.IpcMode = api.IPCModePrivate // Docker's default-ipc-mode
	}
	if hc.CgroupnsMode == "" {
		hc.CgroupnsMode = oci.DefaultCgroupnsMode()
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = 64 << 20
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = api.RestartPolicyDisabled
	}
	var warnings []string
	if hc.NetworkMode.IsHost() && len(hc.PortBindings) > 0 {
		warnings = append(warnings, "Published ports are discarded when using host network mode")
	}
	if _, err := oci.Resources(&hc.Resources); err != nil {
		return res, err
	}
	if hc.Memory > 0 && hc.MemorySwap == 0 {
		// Docker's default: as much swap as memory.
		hc.MemorySwap = 2 * hc.Memory
	}

	parent, err := d.imgs.SnapshotKey(ctx, img)
	if err != nil {
		return res, err
	}
	c := &container.Container{
		ID:          id,
		Name:        name,
		Created:     time.Now().UTC(),
		Path:        path,
		Args:        args,
		Image:       img.ID.String(),
		Config:      &cfg,
		HostConfig:  hc,
		Endpoints:   opts.Endpoints,
		State:       container.State{Status: api.StateCreated},
		SnapshotKey: snapshotKey(id),
		Driver:      d.driver,
	}
	if c.Config.Hostname == "" && !hc.NetworkMode.IsHost() && !hc.NetworkMode.IsContainer() {
		c.Config.Hostname = container.ShortID(id)
	}
	if err := d.normalizeLinks(name, c); err != nil {
		return res, err
	}
	if err := os.MkdirAll(d.ctrDir(id), 0o700); err != nil {
		return res, fmt.Errorf("create container directory: %w", err)
	}
	undo = append(undo, func() { os.RemoveAll(d.ctrDir(id)) })
	switch hc.LogConfig.Type {
	case "json-file", "local":
		c.LogPath = filepath.Join(d.ctrDir(id), id+"-json.log")
	case "none":
	default:
		return res, fmt.Errorf("failed to create logger: logger: no log driver named '%s' is registered: %w", hc.LogConfig.Type, errdefs.ErrInvalidArgument)
	}
	if _, _, err := logRotation(hc.LogConfig); err != nil {
		return res, err
	}

	mounts, err := d.snap.Prepare(ctx, c.SnapshotKey, parent)
	if err != nil {
		return res, fmt.Errorf("prepare container layer: %w", err)
	}
	undo = append(undo, func() { d.snap.Remove(context.WithoutCancel(ctx), c.SnapshotKey) })
	if c.Mounts, err = d.resolveMounts(ctx, c); err != nil {
		return res, err
	}
	undo = append(undo, func() { d.releaseMounts(context.WithoutCancel(ctx), c, true) })
	// Produce the spec once now, so that what start would refuse (an
	// unknown user, a bad capability) is refused at create, as Docker does.
	// Only user and group names need the container's files (/etc/passwd,
	// /etc/group); without them the spec is checked against the container
	// directory, which has no /etc, and the layer is not mounted (a mount
	// and unmount per create, dear when many containers start at once).
	if namesUserOrGroup(c.Config.User, hc.GroupAdd) {
		err = snapshot.WithTempMount(ctx, mounts, func(root string) error {
			_, err := d.buildSpec(c, root, createJoins(c.HostConfig), nil, createShm(c))
			return err
		})
	} else {
		_, err = d.buildSpec(c, d.ctrDir(id), createJoins(c.HostConfig), nil, createShm(c))
	}
	if err != nil {
		return res, err
	}

	e := newEntry(c)
	e.mu.Lock()
	err = d.save(e)
	e.mu.Unlock()
	if err != nil {
		return res, err
	}
	d.ctrs.add(e)
	d.publishContainer("create", c, nil)
	return CreateContainerResult{ID: id, Warnings: warnings}, nil
}

// namesUserOrGroup reports whether a container's user ("user[:group]")
// or its additional groups name a user or group instead of numbering it,
// so that resolving them needs the container's /etc/passwd or /etc/group.
func namesUserOrGroup(user string, groupAdd []string) bool {
	numeric := func(s string) bool {
		_, err := strconv.Atoi(s)
		return s == "" || err == nil
	}
	u, g, _ := strings.Cut(user, ":")
	if !numeric(u) || !numeric(g) {
		return true
	}
	for _, ga := range groupAdd {
		if !numeric(ga) {
			return true
		}
	}
	return false
}

// createJoins stands in for the namespaces shared with other containers
// (network, pid and ipc modes "container:<ref>"), which are found only at
// start, so that the spec can be checked at create.
func createJoins(hc *api.HostConfig) map[specs.LinuxNamespaceType]string {
	join := map[specs.LinuxNamespaceType]string{}
	if hc.NetworkMode.IsContainer() {
		join[specs.NetworkNamespace] = "/proc/self/ns/net"
	}
	if hc.PidMode.IsContainer() {
		join[specs.PIDNamespace] = "/proc/self/ns/pid"
	}
	if hc.IpcMode.IsContainer() {
		join[specs.IPCNamespace] = "/proc/self/ns/ipc"
	}
	return join
}

// createShm stands in for the host /dev/shm of a shareable or joined IPC
// namespace, found only at start, so that the spec can be checked at
// create.
func createShm(c *container.Container) string {
	if m := c.HostConfig.IpcMode; m.IsShareable() || m.IsContainer() {
		return "/dev/shm"
	}
	return ""
}

// validateHostConfig refuses combinations Docker refuses at create.
func validateHostConfig(hc *api.HostConfig) error {
	if err := api.ValidateRestartPolicy(hc.RestartPolicy); err != nil {
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	if hc.AutoRemove && !hc.RestartPolicy.IsNone() {
		return fmt.Errorf("can't create 'AutoRemove' container with restart policy: %w", errdefs.ErrInvalidArgument)
	}
	if hc.NetworkMode.IsContainer() && hc.NetworkMode.ConnectedContainer() == "" {
		return fmt.Errorf("invalid network mode %q: %w", hc.NetworkMode, errdefs.ErrInvalidArgument)
	}
	return nil
}

// logRotation returns the rotation of a container's log: max-size and
// max-file from its log options. Rotation is on by default (unlike
// Docker's json-file driver, whose default log grows without bound): 20m
// and 5 files for json-file and local alike, so a chatty container cannot
// fill the disk.
func logRotation(lc api.LogConfig) (maxSize int64, maxFile int, err error) {
	maxSize, maxFile = 20<<20, 5
	_, sizeSet := lc.Config["max-size"]
	_, fileSet := lc.Config["max-file"]
	if lc.Type == "json-file" {
		switch {
		case fileSet && !sizeSet:
			maxSize = 0 // refused below, as Docker refuses it
		case sizeSet && !fileSet:
			maxFile = 1 // Docker's json-file default once max-size is given
		}
	}
	for k, v := range lc.Config {
		switch k {
		case "max-size":
			if maxSize, err = parseSize(v); err != nil || maxSize < 0 {
				return 0, 0, fmt.Errorf("invalid value for max-size %q: %w", v, errdefs.ErrInvalidArgument)
			}
		case "max-file":
			n, err := parsePositive(v)
			if err != nil {
				return 0, 0, fmt.Errorf("invalid value for max-file %q: %w", v, errdefs.ErrInvalidArgument)
			}
			maxFile = n
		case "compress", "labels", "env", "tag", "labels-regex", "env-regex", "mode", "max-buffer-size":
		default:
			return 0, 0, fmt.Errorf("unknown log opt '%s' for %s log driver: %w", k, lc.Type, errdefs.ErrInvalidArgument)
		}
	}
	if maxFile > 1 && maxSize == 0 {
		return 0, 0, fmt.Errorf("max-file cannot be set without max-size: %w", errdefs.ErrInvalidArgument)
	}
	return maxSize, maxFile, nil
}

// publishContainer publishes a container event with Docker's attributes:
// the image, the name, the labels, plus extra.
func (d *Daemon) publishContainer(action string, c *container.Container, extra map[string]string) {
	attrs := map[string]string{"name": c.Name}
	if c.Config != nil {
		attrs["image"] = c.Config.Image
		for k, v := range c.Config.Labels {
			attrs[k] = v
		}
	}
	for k, v := range extra {
		attrs[k] = v
	}
	d.publish(Event{Type: "container", Action: action, ID: c.ID, Attributes: attrs})
}

// envValue returns the value of key in an env list.
func envValue(env []string, key string) (string, bool) {
	for _, kv := range slices.Backward(env) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}
