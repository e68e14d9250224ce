package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/snapshot"
)

// runSpec is what a build container runs.
type runSpec struct {
	argv, env []string
	network   string
	// mounts are RUN --mount mounts resolved to host paths.
	mounts []specs.Mount
	// script is a heredoc with a shebang, run as /dev/pipes/<name>.
	script *inlineFile
}

// inlineFile is a heredoc's name and content.
type inlineFile struct{ name, data string }

// runMount is one RUN --mount whose source is known once the step runs.
type runMount struct {
	m      *instructions.Mount
	target string
	fromID digest.Digest // bind from a stage or image
	host   string        // bind from the context: the resolved source
	secret []byte        // a secret's value (mounted at target unless "")
}

// runStep carries out a RUN instruction.
func (bd *build) runStep(ctx context.Context, st *stageState, cmd *instructions.RunCommand) error {
	network := bd.opts.NetworkMode
	for _, f := range cmd.FlagsUsed {
		switch f {
		case "network":
			network = string(instructions.GetNetwork(cmd))
		case "mount":
		default:
			return fmt.Errorf("RUN --%s is not supported: %w", f, errdefs.ErrNotImplemented)
		}
	}
	switch network {
	case "", "default", "bridge":
		network = "default"
	case "none", "host":
	default:
		return fmt.Errorf("RUN --network=%s is not supported (none, host, default): %w", network, errdefs.ErrNotImplemented)
	}
	rs := runSpec{network: network}
	args := cmd.ShellDependantCmdLine
	if len(cmd.Files) > 0 {
		if len(args.CmdLine) != 1 || !args.PrependShell {
			return fmt.Errorf("parsing produced an invalid run command: %v: %w", args.CmdLine, errdefs.ErrInvalidArgument)
		}
		line := args.CmdLine[0]
		if h := parser.MustParseHeredoc(line); h != nil {
			data := cmd.Files[0].Data
			if cmd.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if strings.HasPrefix(data, "#!") {
				rs.script = &inlineFile{name: cmd.Files[0].Name, data: data}
				args = instructions.ShellDependantCmdLine{CmdLine: []string{"/dev/pipes/" + cmd.Files[0].Name}}
			} else {
				args.CmdLine = []string{data}
			}
		} else {
			// The shell reads the heredocs itself.
			var b strings.Builder
			b.WriteString(line)
			for _, f := range cmd.Files {
				b.WriteString("\n" + f.Data + f.Name)
			}
			args.CmdLine = []string{b.String()}
		}
	}
	rs.argv = st.argv(args)
	if len(rs.argv) == 0 {
		return fmt.Errorf("RUN requires at least one argument: %w", errdefs.ErrInvalidArgument)
	}
	mounts, mountKey, secretEnv, err := bd.runMounts(ctx, st, cmd)
	if err != nil {
		return err
	}
	// Build args reach the command as environment variables that ENV
	// does not override, and show in created_by as Docker writes them.
	var argEnv []string
	names := make([]string, 0, len(st.args))
	for k := range st.args {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, set := (envGetter{env: st.conf.Env}).Get(k); !set {
			argEnv = append(argEnv, k+"="+st.args[k])
		}
	}
	rs.env = append(append(append([]string(nil), st.conf.Env...), argEnv...), secretEnv...)
	createdBy := strings.Join(rs.argv, " ")
	// The proxy args need no ARG and, as in Docker, are neither in the
	// history nor in the cache key.
	proxies := make([]string, 0, len(predefinedArgs))
	for k := range predefinedArgs {
		proxies = append(proxies, k)
	}
	sort.Strings(proxies)
	for _, k := range proxies {
		v, ok := bd.opts.BuildArgs[k]
		if _, declared := st.args[k]; !ok || v == nil || declared {
			continue
		}
		if _, set := (envGetter{env: st.conf.Env}).Get(k); !set {
			rs.env = append(rs.env, k+"="+*v)
		}
	}
	if len(argEnv) > 0 {
		createdBy = fmt.Sprintf("|%d %s %s", len(argEnv), strings.Join(argEnv, " "), createdBy)
	}
	key := "network=" + network + "\n" + mountKey
	if rs.script != nil {
		key += "\nscript=" + digest.FromString(rs.script.data).String()
	}
	s := &step{createdBy: createdBy, cacheText: key}
	s.layer = func(ctx context.Context, root string) error {
		return bd.withRunMounts(ctx, root, mounts, nil, func(resolved []specs.Mount) error {
			rs.mounts = resolved
			return bd.runContainer(ctx, st, root, rs)
		})
	}
	return bd.commit(ctx, st, s)
}

// runMounts checks a RUN's --mount flags and returns them with the text
// they add to the step's cache key (content digests of context binds,
// image IDs of stage and image binds).
func (bd *build) runMounts(ctx context.Context, st *stageState, cmd *instructions.RunCommand) (_ []runMount, _ string, env []string, err error) {
	var out []runMount
	var key strings.Builder
	for _, m := range instructions.GetMounts(cmd) {
		target := m.Target
		if !path.IsAbs(target) {
			base := st.conf.WorkingDir
			if base == "" {
				base = "/"
			}
			target = path.Join(base, target)
		}
		target = path.Clean(target)
		rm := runMount{m: m, target: target}
		switch m.Type {
		case instructions.MountTypeTmpfs:
			fmt.Fprintf(&key, "tmpfs %s %d\n", target, m.SizeLimit)
		case instructions.MountTypeSecret:
			// Secrets are no input of the step's key, as in Docker.
			id := m.CacheID
			switch {
			case id != "":
			case m.Source != "":
				id = m.Source
			default:
				id = path.Base(m.Target)
			}
			value, ok := bd.opts.Secrets[id]
			if !ok {
				if m.Required {
					return nil, "", nil, fmt.Errorf("secret %s: not found: %w", id, errdefs.ErrInvalidArgument)
				}
				continue
			}
			rm.secret = value
			if m.Target == "" {
				rm.target = ""
				if m.Env == nil {
					rm.target = "/run/secrets/" + id
				}
			}
			if m.Env != nil {
				name := *m.Env
				if name == "" {
					name = id
				}
				env = append(env, name+"="+string(value))
			}
		case instructions.MountTypeCache:
			// What a cache mount holds is no input of the step: it is
			// not in the key, as in Docker.
			if m.From != "" {
				return nil, "", nil, fmt.Errorf("RUN --mount=type=cache,from= is not supported yet: %w", errdefs.ErrNotImplemented)
			}
		case instructions.MountTypeBind:
			if m.From != "" {
				id, err := bd.copyFrom(ctx, m.From)
				if err != nil {
					return nil, "", nil, err
				}
				rm.fromID = id
				fmt.Fprintf(&key, "bind %s from %s %q\n", target, id, m.Source)
				break
			}
			src := m.Source
			if src == "" {
				src = "."
			}
			srcs, err := collect(bd.opts.ContextDir, []string{src})
			if err != nil {
				return nil, "", nil, err
			}
			sum, err := hashSources(srcs)
			if err != nil {
				return nil, "", nil, err
			}
			rm.host = srcs[0].host
			if srcs[0].fi.Mode()&fs.ModeSymlink != 0 {
				return nil, "", nil, fmt.Errorf("RUN --mount=type=bind: source %s is a symlink: %w", m.Source, errdefs.ErrInvalidArgument)
			}
			fmt.Fprintf(&key, "bind %s context %s\n", target, sum)
		default:
			return nil, "", nil, fmt.Errorf("RUN --mount=type=%s is not supported yet: %w", m.Type, errdefs.ErrNotImplemented)
		}
		out = append(out, rm)
	}
	return out, key.String(), env, nil
}

// withRunMounts resolves the mounts (mounting the stage and image
// sources), calls fn with them, and then removes the mount points the
// runtime had to create in root, so that they are no part of the layer.
func (bd *build) withRunMounts(ctx context.Context, root string, mounts []runMount, done []specs.Mount, fn func([]specs.Mount) error) error {
	if len(mounts) == 0 {
		created := missingPaths(root, done)
		err := fn(done)
		var errs []error
		for i := len(created) - 1; i >= 0; i-- {
			// Only what is still an empty directory or file: the command
			// may have written there before the mount hid it.
			if rerr := removeIfEmpty(created[i]); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove mount point: %w", rerr))
			}
		}
		if len(errs) == 0 {
			return err
		}
		return errors.Join(append([]error{err}, errs...)...)
	}
	m := mounts[0]
	switch {
	case m.m.Type == instructions.MountTypeTmpfs:
		opts := []string{"nosuid", "nodev"}
		if m.m.SizeLimit > 0 {
			opts = append(opts, "size="+strconv.FormatInt(m.m.SizeLimit, 10))
		}
		return bd.withRunMounts(ctx, root, mounts[1:], append(done, specs.Mount{Destination: m.target, Type: "tmpfs", Source: "tmpfs", Options: opts}), fn)
	case m.m.Type == instructions.MountTypeSecret:
		if m.target == "" {
			return bd.withRunMounts(ctx, root, mounts[1:], done, fn)
		}
		f, err := os.CreateTemp(bd.scratch, "secret-")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		_, err = f.Write(m.secret)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		mode := os.FileMode(0o400)
		if m.m.Mode != nil {
			mode = os.FileMode(*m.m.Mode & 0o7777)
		}
		uid, gid := 0, 0
		if m.m.UID != nil {
			uid = int(*m.m.UID)
		}
		if m.m.GID != nil {
			gid = int(*m.m.GID)
		}
		if err := os.Chmod(f.Name(), mode); err != nil {
			return err
		}
		if err := os.Lchown(f.Name(), uid, gid); err != nil {
			return err
		}
		return bd.withRunMounts(ctx, root, mounts[1:], append(done, bindMount(m.target, f.Name(), true)), fn)
	case m.m.Type == instructions.MountTypeCache:
		return bd.withCacheMount(ctx, m, func(host string) error {
			return bd.withRunMounts(ctx, root, mounts[1:], append(done, bindMount(m.target, host, m.m.ReadOnly)), fn)
		})
	case m.host != "":
		return bd.withBindSource(m, m.host, func(host string) error {
			return bd.withBindSource(m, host, func(host string) error {
				return bd.withRunMounts(ctx, root, mounts[1:], append(done, bindMount(m.target, host, m.m.ReadOnly)), fn)
			})
		})
	default:
		return bd.withImageRoot(ctx, m.fromID, func(src string) error {
			host, err := securejoin.SecureJoin(src, m.m.Source)
			if err != nil {
				return err
			}
			if _, err := os.Stat(host); err != nil {
				return fmt.Errorf("RUN --mount from %s: source %s: %w: %w", m.m.From, m.m.Source, err, errdefs.ErrInvalidArgument)
			}
			return bd.withBindSource(m, host, func(host string) error {
				return bd.withRunMounts(ctx, root, mounts[1:], append(done, bindMount(m.target, host, m.m.ReadOnly)), fn)
			})
		})
	}
}

// withBindSource calls fn with what a bind mount of host binds: host
// itself when read-only; for rw, a writable view whose writes are thrown
// away afterwards, as Docker's: an overlay over a directory, a copy of a
// file.
func (bd *build) withBindSource(m runMount, host string, fn func(string) error) error {
	if m.m.ReadOnly {
		return fn(host)
	}
	dir, err := os.MkdirTemp(bd.scratch, "rw-")
	if err != nil {
		return err
	}
	mounted := false
	defer func() {
		// Never remove files through a mount still there.
		if !mounted || snapshot.UnmountAll(filepath.Join(dir, "merged")) == nil {
			os.RemoveAll(dir)
		}
	}()
	fi, err := os.Stat(host)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		src, err := os.Open(host)
		if err != nil {
			return err
		}
		defer src.Close()
		cp := filepath.Join(dir, "file")
		dst, err := os.OpenFile(cp, os.O_CREATE|os.O_WRONLY|os.O_EXCL, fi.Mode().Perm())
		if err != nil {
			return err
		}
		_, err = io.Copy(dst, src)
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		return fn(cp)
	}
	for _, d := range []string{"upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	merged := filepath.Join(dir, "merged")
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", host, filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return fmt.Errorf("RUN --mount=type=bind,rw: writable view of %s: %w", m.m.Source, err)
	}
	mounted = true
	return fn(merged)
}

func bindMount(target, host string, readOnly bool) specs.Mount {
	mode := "rw"
	if readOnly {
		mode = "ro"
	}
	return specs.Mount{Destination: target, Type: "bind", Source: host, Options: []string{"rbind", mode}}
}

// missingPaths returns the host paths of the mount destinations (and
// their missing parents) that do not exist in root yet, parents first.
func missingPaths(root string, mounts []specs.Mount) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range mounts {
		var chain []string
		for p := m.Destination; p != "/" && p != "."; p = path.Dir(p) {
			full, err := securejoin.SecureJoin(root, p)
			if err != nil {
				break
			}
			if _, err := os.Lstat(full); err == nil {
				break
			}
			chain = append(chain, full)
		}
		for i := len(chain) - 1; i >= 0; i-- {
			if !seen[chain[i]] {
				seen[chain[i]] = true
				out = append(out, chain[i])
			}
		}
	}
	return out
}

// removeIfEmpty removes p if it is an empty directory or an empty file.
func removeIfEmpty(p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if fi.Mode().IsRegular() && fi.Size() != 0 {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, syscall.ENOTEMPTY) {
		return err
	}
	return nil
}

// cacheMountPrefix names the snapshots that hold RUN --mount=type=cache
// directories; they outlive builds until Prune.
const cacheMountPrefix = "buildcache-"

// withCacheMount mounts the cache directory of m (made on first use,
// with the mount's mode and owner) and calls fn with its host path.
func (bd *build) withCacheMount(ctx context.Context, m runMount, fn func(host string) error) error {
	id := m.m.CacheID
	if id == "" {
		id = m.target
	}
	sn := bd.b.cfg.Snapshotter
	key := cacheMountPrefix + digest.FromString(id).Encoded()[:32]
	defer bd.b.useCache(key)()
	mounts, err := sn.Prepare(ctx, key, "", snapshot.WithLabels(map[string]string{"berth.build.cache-id": id}))
	fresh := err == nil
	if errdefs.IsAlreadyExists(err) {
		mounts, err = sn.Mounts(ctx, key)
	}
	if err != nil {
		return fmt.Errorf("cache mount %s: %w", id, err)
	}
	dir, err := os.MkdirTemp(bd.scratch, "cache-")
	if err != nil {
		return err
	}
	if err := snapshot.MountAll(mounts, dir); err != nil {
		os.Remove(dir)
		return fmt.Errorf("cache mount %s: %w", id, err)
	}
	defer func() {
		if err := snapshot.UnmountAll(dir); err == nil {
			os.Remove(dir)
		}
	}()
	if fresh {
		mode := os.FileMode(0o755)
		if m.m.Mode != nil {
			mode = os.FileMode(*m.m.Mode & 0o7777)
		}
		uid, gid := 0, 0
		if m.m.UID != nil {
			uid = int(*m.m.UID)
		}
		if m.m.GID != nil {
			gid = int(*m.m.GID)
		}
		if err := os.Chmod(dir, mode); err != nil {
			return err
		}
		if err := os.Lchown(dir, uid, gid); err != nil {
			return err
		}
	}
	return fn(dir)
}
