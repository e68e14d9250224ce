package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/oci"
	"github.com/berth-project/berth/internal/snapshot"
)

// layer prepares a snapshot on st's image, mounts it, lets fill change it
// and returns the diff as a layer blob. The returned cleanup (never nil
// once the snapshot exists) removes the snapshot; call it after the layer
// is in an image.
func (bd *build) layer(ctx context.Context, st *stageState, fill func(ctx context.Context, root string) error) (image.LayerBlob, func(), error) {
	imgs, sn := bd.b.cfg.Images, bd.b.cfg.Snapshotter
	parent := ""
	if st.imageID != "" {
		img, err := imgs.Resolve(ctx, st.imageID.String())
		if err != nil {
			return image.LayerBlob{}, nil, err
		}
		if parent, err = imgs.SnapshotKey(ctx, img); err != nil {
			return image.LayerBlob{}, nil, err
		}
	}
	key := "build-" + randomHex(16)
	mounts, err := sn.Prepare(ctx, key, parent)
	if err != nil {
		return image.LayerBlob{}, nil, fmt.Errorf("prepare build snapshot: %w", err)
	}
	cleanup := func() {
		if err := sn.Remove(context.WithoutCancel(ctx), key); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).Error("remove build snapshot", "key", key, "error", err)
		}
	}
	root := filepath.Join(bd.scratch, "rootfs-"+key[6:18])
	if err := os.Mkdir(root, 0o755); err != nil {
		return image.LayerBlob{}, cleanup, err
	}
	if err := snapshot.MountAll(mounts, root); err != nil {
		os.Remove(root)
		return image.LayerBlob{}, cleanup, fmt.Errorf("mount build snapshot: %w", err)
	}
	ferr := fill(ctx, root)
	if err := snapshot.UnmountAll(root); err != nil {
		return image.LayerBlob{}, cleanup, errors.Join(ferr, err)
	}
	if err := os.Remove(root); err != nil {
		return image.LayerBlob{}, cleanup, errors.Join(ferr, err)
	}
	if ferr != nil {
		return image.LayerBlob{}, cleanup, ferr
	}
	l, err := imgs.DiffSnapshot(ctx, key)
	if err != nil {
		return image.LayerBlob{}, cleanup, err
	}
	if err := bd.hold(metadata.ResourceContent, l.Desc.Digest.String()); err != nil {
		return image.LayerBlob{}, cleanup, err
	}
	if !l.Empty() {
		// The snapshot holds exactly the parent plus this layer: commit it
		// as the layer's chain-ID snapshot, which CreateImage then finds
		// unpacked already, sparing a second write of every file. Should
		// another build have made the same layer first, theirs is used.
		chain := l.DiffID
		if parent != "" {
			chain = digest.FromString(parent + " " + l.DiffID.String())
		}
		labels := map[string]string{"berth.layer.diffid": l.DiffID.String(), "berth.layer.tarsize": strconv.FormatInt(l.Size, 10)}
		if err := bd.hold(metadata.ResourceSnapshot, chain.String()); err != nil {
			return image.LayerBlob{}, cleanup, err
		}
		if err := sn.Commit(ctx, chain.String(), key, snapshot.WithLabels(labels)); err != nil && !errdefs.IsAlreadyExists(err) {
			return image.LayerBlob{}, cleanup, fmt.Errorf("commit build snapshot: %w", err)
		}
	}
	return l, cleanup, nil
}

// mkdirInRoot creates directory p (absolute, inside the image) in the
// tree at root, resolving symlinks inside root only.
func mkdirInRoot(root, p string) error {
	full, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return fmt.Errorf("workdir %s: %w", p, err)
	}
	if err := os.MkdirAll(full, 0o755); err != nil {
		return fmt.Errorf("workdir %s: %w", p, err)
	}
	return nil
}

// runContainer runs argv in a build container on root and waits for it,
// streaming its output to Out. The container, its bundle and cgroup are
// gone when it returns; on ctx's end the container is killed.
func (bd *build) runContainer(ctx context.Context, st *stageState, root string, rs runSpec) error {
	argv, network := rs.argv, rs.network
	id := randomHex(32)
	fmt.Fprintf(bd.opts.Out, " ---> Running in %s\n", id[:12])
	bundle := filepath.Join(bd.scratch, "bundle-"+id[:12])
	if err := os.Mkdir(bundle, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(bundle)
	in := oci.Input{
		ID: id,
		Config: &container.Config{
			Hostname:   id[:12],
			Env:        rs.env,
			Cmd:        argv,
			WorkingDir: st.conf.WorkingDir,
			User:       st.conf.User,
		},
		// "default" without Config.Network: a namespace of its own
		// with only a loopback, as "none".
		HostConfig:  &container.HostConfig{NetworkMode: container.NetworkMode(network)},
		Rootfs:      root,
		Mounts:      rs.mounts,
		CgroupsPath: "/berth-build/" + id,
	}
	if rs.script != nil {
		// A heredoc with a shebang runs as a file under /dev/pipes.
		pipes := filepath.Join(bundle, "pipes")
		if err := os.Mkdir(pipes, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(pipes, rs.script.name), []byte(rs.script.data), 0o755); err != nil {
			return err
		}
		in.Mounts = append(in.Mounts, specs.Mount{Destination: "/dev/pipes", Type: "bind", Source: pipes, Options: []string{"rbind", "ro"}})
	}
	if network == "default" && bd.b.cfg.Network != nil {
		att, err := bd.b.cfg.Network.Attach(ctx, id, bundle)
		if err != nil {
			return fmt.Errorf("connect build container to the default network: %w", err)
		}
		defer func() {
			if err := bd.b.cfg.Network.Detach(context.WithoutCancel(ctx), id); err != nil {
				log.G(ctx).Warn("disconnect build container", "id", id, "error", err)
			}
		}()
		in.HostConfig.NetworkMode = "bridge"
		in.JoinNamespaces = map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: att.NetNSPath}
		in.HostsPath, in.ResolvConfPath = att.HostsPath, att.ResolvConfPath
	} else if network == "host" {
		for _, f := range []struct {
			src string
			dst *string
		}{{"/etc/hosts", &in.HostsPath}, {"/etc/resolv.conf", &in.ResolvConfPath}} {
			data, err := os.ReadFile(f.src)
			if err != nil {
				continue
			}
			p := filepath.Join(bundle, filepath.Base(f.src))
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return err
			}
			*f.dst = p
		}
	} else {
		// Only a loopback: a hosts file that names it and the container.
		p := filepath.Join(bundle, "hosts")
		hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t" + id[:12] + "\n"
		if err := os.WriteFile(p, []byte(hosts), 0o644); err != nil {
			return err
		}
		in.HostsPath = p
	}
	spec, err := oci.Generate(in)
	if err != nil {
		return fmt.Errorf("build container spec: %w", err)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return err
	}
	// The files mounted over /etc/hosts and /etc/resolv.conf need mount
	// points; those the runtime creates are no part of the layer.
	var points []specs.Mount
	if in.HostsPath != "" {
		points = append(points, specs.Mount{Destination: "/etc/hosts"})
	}
	if in.ResolvConfPath != "" {
		points = append(points, specs.Mount{Destination: "/etc/resolv.conf"})
	}
	created := missingPaths(root, points)
	runErr := bd.runtime(ctx, bundle, id)
	for i := len(created) - 1; i >= 0; i-- {
		if err := removeIfEmpty(created[i]); err != nil && !errors.Is(err, os.ErrNotExist) && runErr == nil {
			runErr = fmt.Errorf("remove mount point: %w", err)
		}
	}
	fmt.Fprintf(bd.opts.Out, "Removing intermediate container %s\n", id[:12])
	if runErr != nil {
		var ee *exec.ExitError
		if errors.As(runErr, &ee) && ctx.Err() == nil {
			return &ExitError{Command: strings.Join(argv, " "), Code: ee.ExitCode()}
		}
		return runErr
	}
	return nil
}

// runtime runs `berth-runtime run` for the bundle, kills the container if
// ctx ends first, and always deletes it.
func (bd *build) runtime(ctx context.Context, bundle, id string) error {
	rt, root := bd.b.cfg.RuntimePath, bd.b.cfg.RuntimeRoot
	defer func() {
		var stderr bytes.Buffer
		c := exec.Command(rt, "--root", root, "delete", "--force", id)
		c.Stderr = &stderr
		if err := c.Run(); err != nil && !strings.Contains(stderr.String(), "does not exist") && !strings.Contains(stderr.String(), "not found") {
			log.G(ctx).Warn("delete build container", "id", id, "error", err, "stderr", strings.TrimSpace(stderr.String()))
		}
	}()
	// The runtime's own errors go to its log; the command's exit status
	// is run's, with nothing logged.
	logPath := filepath.Join(bundle, "runtime.log")
	c := exec.Command(rt, "--root", root, "--log", logPath, "--log-format", "json", "run", "--bundle", bundle, id)
	out := bd.opts.Out
	c.Stdout, c.Stderr = out, out
	if err := c.Start(); err != nil {
		return fmt.Errorf("start build container: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			if msg := runtimeError(logPath); msg != "" {
				return fmt.Errorf("build container: %s", msg)
			}
		}
		return err
	case <-ctx.Done():
		// Kill the container; until it exists (the runtime may still be
		// creating it) the kill fails, so try again until run returns.
		// Killing the runtime itself would leave a half-made container.
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		giveUp := time.After(10 * time.Second)
	wait:
		for {
			k := exec.Command(rt, "--root", root, "kill", id, "KILL")
			k.Stdout, k.Stderr = io.Discard, io.Discard
			_ = k.Run()
			select {
			case <-done:
				break wait
			case <-tick.C:
			case <-giveUp:
				_ = c.Process.Kill()
				<-done
				break wait
			}
		}
		return fmt.Errorf("build container %s: %w", id[:12], ctx.Err())
	}
}

// runtimeError returns the last error berth-runtime logged as JSON to
// path, or "" if it logged none.
func runtimeError(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	msg := ""
	for _, line := range bytes.Split(data, []byte("\n")) {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(line, &entry) == nil && entry.Level == "ERROR" {
			msg = entry.Msg
		}
	}
	return msg
}
