package build

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/metadata"
)

// step is what one instruction commits.
type step struct {
	// createdBy is the history entry's created_by; a layer func may set
	// it (COPY --from learns its content digest while copying).
	createdBy string
	// cacheText is hashed into the cache key besides the parent and
	// createdBy (content digests, network mode).
	cacheText string
	// layer, if set, writes the step's changes into a snapshot of the
	// parent mounted at root.
	layer func(ctx context.Context, root string) error
	// nop says Docker commits the step from a container that runs
	// nothing (metadata instructions, WORKDIR): the progress shows it.
	nop bool
}

// copyArgs are a COPY's or ADD's parsed arguments.
type copyArgs struct {
	instructions.SourcesAndDest
	name         string // COPY or ADD
	from         string
	chown, chmod string
	exclude      []string
	parents      bool
	add          bool   // unpack local archives
	checksum     string // ADD --checksum: the digest URL sources must have
}

// nop is a metadata step, with Docker's created_by for it
// ("/bin/sh -c #(nop)  ENV a=b").
func (bd *build) nop(st *stageState, text string) *step {
	return &step{createdBy: strings.Join(st.shell(), " ") + " #(nop)  " + text, nop: true}
}

// dispatch carries out one instruction of stage st.
func (bd *build) dispatch(ctx context.Context, st *stageState, cmd instructions.Command) error {
	env := st.env()
	expander := func(word string) (string, error) { return bd.expand(word, env) }
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if err := ex.Expand(expander); err != nil {
			return err
		}
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		// Heredoc contents: variables expand, quotes stay.
		raw := shell.NewLex(bd.df.escape)
		raw.SkipProcessQuotes = true
		err := ex.ExpandRaw(func(word string) (string, error) {
			s, _, err := raw.ProcessWord(word, env)
			return s, err
		})
		if err != nil {
			return err
		}
	}
	c := &st.conf
	switch cmd := cmd.(type) {
	case *instructions.EnvCommand:
		var words []string
		for _, kv := range cmd.Env {
			c.Env = setEnv(c.Env, kv.Key, kv.Value)
			words = append(words, kv.Key+"="+kv.Value)
		}
		return bd.commitMeta(ctx, st, bd.nop(st, "ENV "+strings.Join(words, " ")))
	case *instructions.LabelCommand:
		var words []string
		for _, kv := range cmd.Labels {
			if c.Labels == nil {
				c.Labels = map[string]string{}
			}
			c.Labels[kv.Key] = kv.Value
			words = append(words, kv.Key+"="+kv.Value)
		}
		return bd.commitMeta(ctx, st, bd.nop(st, "LABEL "+strings.Join(words, " ")))
	case *instructions.MaintainerCommand:
		st.author = cmd.Maintainer
		return bd.commitMeta(ctx, st, bd.nop(st, "MAINTAINER "+cmd.Maintainer))
	case *instructions.UserCommand:
		c.User = cmd.User
		return bd.commitMeta(ctx, st, bd.nop(st, "USER "+cmd.User))
	case *instructions.WorkdirCommand:
		return bd.workdir(ctx, st, cmd.Path)
	case *instructions.CmdCommand:
		if len(cmd.Files) > 0 {
			return fmt.Errorf("heredocs in CMD are not supported: %w", errdefs.ErrNotImplemented)
		}
		c.Cmd = st.argv(cmd.ShellDependantCmdLine)
		st.cmdSet = true
		return bd.commitMeta(ctx, st, bd.nop(st, fmt.Sprintf("CMD %q", c.Cmd)))
	case *instructions.EntrypointCommand:
		if len(cmd.Files) > 0 {
			return fmt.Errorf("heredocs in ENTRYPOINT are not supported: %w", errdefs.ErrNotImplemented)
		}
		c.Entrypoint = st.argv(cmd.ShellDependantCmdLine)
		if !st.cmdSet {
			c.Cmd = nil
		}
		return bd.commitMeta(ctx, st, bd.nop(st, fmt.Sprintf("ENTRYPOINT %q", c.Entrypoint)))
	case *instructions.ExposeCommand:
		var ports, words []string
		for _, p := range cmd.Ports {
			p, err := expander(p)
			if err != nil {
				return err
			}
			ps, err := exposedPorts(p)
			if err != nil {
				return err
			}
			ports = append(ports, ps...)
			words = append(words, p)
		}
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range ports {
			c.ExposedPorts[p] = struct{}{}
		}
		return bd.commitMeta(ctx, st, bd.nop(st, "EXPOSE "+strings.Join(words, " ")))
	case *instructions.VolumeCommand:
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for _, v := range cmd.Volumes {
			if strings.TrimSpace(v) == "" {
				return fmt.Errorf("VOLUME specified can not be an empty string: %w", errdefs.ErrInvalidArgument)
			}
			c.Volumes[v] = struct{}{}
		}
		return bd.commitMeta(ctx, st, bd.nop(st, fmt.Sprintf("VOLUME %v", cmd.Volumes)))
	case *instructions.StopSignalCommand:
		if !validSignal(cmd.Signal) {
			return fmt.Errorf("invalid signal: %s: %w", cmd.Signal, errdefs.ErrInvalidArgument)
		}
		c.StopSignal = cmd.Signal
		return bd.commitMeta(ctx, st, bd.nop(st, "STOPSIGNAL "+cmd.Signal))
	case *instructions.HealthCheckCommand:
		if old := c.Healthcheck; old != nil && len(old.Test) > 0 && old.Test[0] != "NONE" {
			fmt.Fprintf(bd.opts.Out, "Note: overriding previous HEALTHCHECK: %v\n", old.Test)
		}
		h := cmd.Health // written as Docker prints the struct with %q
		c.Healthcheck = inheritHealth(*h, c.Healthcheck)
		if h.StartInterval == 0 {
			// As dockerd 20.10, whose health config has no start
			// interval.
			return bd.commitMeta(ctx, st, bd.nop(st, fmt.Sprintf("HEALTHCHECK &{%q %q %q %q %q}",
				h.Test, h.Interval, h.Timeout, h.StartPeriod, rune(h.Retries))))
		}
		return bd.commitMeta(ctx, st, bd.nop(st, fmt.Sprintf("HEALTHCHECK &{%q %q %q %q %q %q}",
			h.Test, h.Interval, h.Timeout, h.StartPeriod, h.StartInterval, rune(h.Retries))))
	case *instructions.ShellCommand:
		c.Shell = append([]string(nil), cmd.Shell...)
		return bd.commitMeta(ctx, st, bd.nop(st, fmt.Sprintf("SHELL %v", cmd.Shell)))
	case *instructions.OnbuildCommand:
		expr := strings.TrimSpace(cmd.Expression)
		c.OnBuild = append(c.OnBuild, expr)
		return bd.commitMeta(ctx, st, bd.nop(st, "ONBUILD "+expr))
	case *instructions.ArgCommand:
		var words []string
		for _, kv := range cmd.Args {
			bd.markUsed(kv.Key)
			words = append(words, kv.String())
			if kv.Value == nil {
				words[len(words)-1] = kv.Key
			}
			if v, ok := bd.opts.BuildArgs[kv.Key]; ok && v != nil {
				st.args[kv.Key] = *v
			} else if kv.Value != nil {
				st.args[kv.Key] = *kv.Value
			} else if v, ok := bd.metaArgs[kv.Key]; ok {
				st.args[kv.Key] = v
			}
		}
		return bd.commitMeta(ctx, st, bd.nop(st, "ARG "+strings.Join(words, " ")))
	case *instructions.RunCommand:
		return bd.runStep(ctx, st, cmd)
	case *instructions.CopyCommand:
		return bd.copyStep(ctx, st, copyArgs{
			SourcesAndDest: cmd.SourcesAndDest, from: cmd.From, chown: cmd.Chown, chmod: cmd.Chmod,
			exclude: cmd.ExcludePatterns, parents: cmd.Parents, name: "COPY",
		})
	case *instructions.AddCommand:
		if cmd.KeepGitDir != nil {
			return fmt.Errorf("ADD --keep-git-dir is not supported (nor is ADD of a Git repository): %w", errdefs.ErrNotImplemented)
		}
		return bd.copyStep(ctx, st, copyArgs{
			SourcesAndDest: cmd.SourcesAndDest, chown: cmd.Chown, chmod: cmd.Chmod,
			exclude: cmd.ExcludePatterns, name: "ADD", add: cmd.Unpack == nil || *cmd.Unpack,
			checksum: cmd.Checksum,
		})
	}
	return fmt.Errorf("instruction %s is not supported: %w", cmd.Name(), errdefs.ErrNotImplemented)
}

// inheritHealth returns the health check h with each field it leaves
// unset taken from prev, the one it replaces: Docker's classic builder
// stores it so (its container create fills them in from the parent
// image's), even for HEALTHCHECK NONE.
func inheritHealth(h dockerspec.HealthcheckConfig, prev *dockerspec.HealthcheckConfig) *dockerspec.HealthcheckConfig {
	h.Test = slices.Clone(h.Test)
	if prev == nil {
		return &h
	}
	if len(h.Test) == 0 {
		h.Test = slices.Clone(prev.Test)
	}
	for _, f := range []struct{ v, from *time.Duration }{
		{&h.Interval, &prev.Interval}, {&h.Timeout, &prev.Timeout},
		{&h.StartPeriod, &prev.StartPeriod}, {&h.StartInterval, &prev.StartInterval},
	} {
		if *f.v == 0 {
			*f.v = *f.from
		}
	}
	if h.Retries == 0 {
		h.Retries = prev.Retries
	}
	return &h
}

// argv is the command line of a CMD, ENTRYPOINT or RUN: the exec form as
// written, or the shell form run by the stage's shell.
func (st *stageState) argv(c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return append([]string(nil), c.CmdLine...)
	}
	if len(c.CmdLine) == 0 {
		return nil
	}
	return append(st.shell(), strings.Join(c.CmdLine, " "))
}

// workdir sets the working directory and creates it in the image.
func (bd *build) workdir(ctx context.Context, st *stageState, p string) error {
	if p == "" {
		return fmt.Errorf("WORKDIR requires exactly one argument: %w", errdefs.ErrInvalidArgument)
	}
	if !path.IsAbs(p) {
		base := st.conf.WorkingDir
		if base == "" {
			base = "/"
		}
		p = path.Join(base, p)
	}
	p = path.Clean(p)
	st.conf.WorkingDir = p
	s := &step{createdBy: strings.Join(st.shell(), " ") + " #(nop) WORKDIR " + p, nop: true}
	s.layer = func(ctx context.Context, root string) error { return mkdirInRoot(root, p) }
	return bd.commit(ctx, st, s)
}

// labelStep applies Options.Labels to the final stage as Docker's classic
// builder does: one LABEL step per label, in key order.
func (bd *build) labelStep(ctx context.Context, st *stageState) error {
	keys := make([]string, 0, len(bd.opts.Labels))
	for k := range bd.opts.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if st.conf.Labels == nil {
			st.conf.Labels = map[string]string{}
		}
		st.conf.Labels[k] = bd.opts.Labels[k]
		text := "LABEL " + k + "=" + bd.opts.Labels[k]
		bd.stepf(text)
		if err := bd.commitMeta(ctx, st, bd.nop(st, text)); err != nil {
			return err
		}
	}
	return nil
}

// commitMeta commits a step without a layer.
func (bd *build) commitMeta(ctx context.Context, st *stageState, s *step) error {
	return bd.commit(ctx, st, s)
}

// container prints the lines Docker's classic builder prints around the
// container it commits a step without RUN from.
func (bd *build) container(fn func() error) error {
	id := randomHex(6)
	fmt.Fprintf(bd.opts.Out, " ---> Running in %s\n", id)
	err := fn()
	fmt.Fprintf(bd.opts.Out, "Removing intermediate container %s\n", id)
	return err
}

// commit makes the image of one step on top of st's, or takes it from
// the cache, and makes it st's image.
func (bd *build) commit(ctx context.Context, st *stageState, s *step) error {
	key := cacheKey(st.imageID, s.createdBy, s.cacheText)
	if !bd.opts.NoCache {
		id, ok, err := bd.lookup(ctx, key, st.imageID)
		if err != nil {
			return err
		}
		if ok {
			fmt.Fprintln(bd.opts.Out, " ---> Using cache")
			st.imageID = id
			if !st.triggers {
				bd.printID(id)
			}
			return nil
		}
	}
	var img metadata.Image
	create := func() error {
		spec := image.ImageSpec{Parent: st.imageID, Author: st.author}
		if s.layer != nil {
			l, cleanup, err := bd.layer(ctx, st, s.layer)
			if cleanup != nil {
				defer cleanup()
			}
			if err != nil {
				return err
			}
			spec.Layer = &l
		}
		conf := cloneConfig(st.conf)
		spec.Config = &conf.ImageConfig
		spec.Docker = &image.DockerConfig{Healthcheck: conf.Healthcheck, OnBuild: conf.OnBuild, Shell: conf.Shell}
		spec.CreatedBy = s.createdBy
		var err error
		if img, err = bd.b.cfg.Images.CreateImage(ctx, spec); err != nil {
			return fmt.Errorf("create image: %w", err)
		}
		return nil
	}
	var err error
	if s.nop {
		err = bd.container(create)
	} else {
		err = create()
	}
	if err != nil {
		return err
	}
	bd.holdImage(img.ID)
	if err := bd.b.store(key, st.imageID, img.ID); err != nil {
		return err
	}
	st.imageID = img.ID
	if !st.triggers {
		bd.printID(img.ID)
	}
	return nil
}

// setEnv sets name=value in env, replacing an earlier value.
func setEnv(env []string, name, value string) []string {
	for i, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == name {
			env[i] = name + "=" + value
			return env
		}
	}
	return append(env, name+"="+value)
}

// exposedPorts parses one EXPOSE word ("80", "80/udp", "8000-8002/tcp")
// into the ports it names, each with its protocol.
func exposedPorts(w string) ([]string, error) {
	port, proto, ok := strings.Cut(w, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return nil, fmt.Errorf("invalid proto: %s: %w", proto, errdefs.ErrInvalidArgument)
	}
	lo, hi, isRange := strings.Cut(port, "-")
	start, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid containerPort: %s: %w", port, errdefs.ErrInvalidArgument)
	}
	end := start
	if isRange {
		if end, err = strconv.ParseUint(hi, 10, 16); err != nil || end < start {
			return nil, fmt.Errorf("invalid containerPort: %s: %w", port, errdefs.ErrInvalidArgument)
		}
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

// validSignal reports whether s names a signal ("SIGTERM", "TERM", "15").
func validSignal(s string) bool {
	if n, err := strconv.Atoi(s); err == nil {
		return n > 0 && n < 65
	}
	s = strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if strings.HasPrefix(s, "RTMIN") || strings.HasPrefix(s, "RTMAX") {
		return true
	}
	for _, name := range []string{"ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
		"KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
		"TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ"} {
		if s == name {
			return true
		}
	}
	return false
}
