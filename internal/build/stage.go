package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
)

// imageConfig is an image config's "config" object: the OCI fields and
// those only Docker writes.
type imageConfig struct {
	ocispec.ImageConfig
	Healthcheck *dockerspec.HealthcheckConfig `json:"Healthcheck,omitempty"`
	OnBuild     []string                      `json:"OnBuild,omitempty"`
	Shell       []string                      `json:"Shell,omitempty"`
}

// stageState is a stage being built: the image its last step made and
// the state later steps see.
type stageState struct {
	name    string
	imageID digest.Digest // "" while a scratch stage has no step yet
	conf    imageConfig
	args    map[string]string // ARG values declared in the stage
	author  string
	cmdSet  bool // a CMD came in this stage (ENTRYPOINT keeps it)
	// triggers is set while the base image's ONBUILD triggers run: their
	// steps print no image ID, as in Docker's classic builder.
	triggers bool
}

// build is one Build call.
type build struct {
	b       *Builder
	opts    Options
	df      *dockerfile
	scratch string
	lease   string // the metadata lease holding what the build made

	usedMu *sync.Mutex
	used   map[string]bool // build args an ARG declared
	holds  *imageHolds     // images the build uses, kept from Prune

	metaArgs map[string]string
	// stages are the built stages by index (nil while building); a
	// stage's view sees only those it waited for: deps.
	stages      []*stageState
	deps        []int
	lex         *shell.Lex // not safe for concurrent use: one per stage
	step, total int
}

// markUsed records that an ARG declared the build arg name.
func (bd *build) markUsed(name string) {
	bd.usedMu.Lock()
	defer bd.usedMu.Unlock()
	bd.used[name] = true
}

// stageNamed returns the earlier stage called name (or numbered so, when
// byIndex), if there is one.
func (bd *build) stageNamed(name string, byIndex bool) (*stageState, bool) {
	n, err := strconv.Atoi(name)
	for _, j := range bd.deps {
		st := bd.stages[j]
		if st.name != "" && strings.EqualFold(st.name, name) || byIndex && err == nil && n == j {
			return st, true
		}
	}
	return nil, false
}

// run builds the stages up to the target and returns the target's image.
func (bd *build) run(ctx context.Context) (digest.Digest, error) {
	if err := bd.evalMetaArgs(); err != nil {
		return "", err
	}
	target := len(bd.df.stages) - 1
	if bd.opts.Target != "" {
		i, ok := instructions.HasStage(bd.df.stages, bd.opts.Target)
		if !ok {
			return "", fmt.Errorf("failed to reach build target %s in Dockerfile: %w", bd.opts.Target, errdefs.ErrInvalidArgument)
		}
		target = i
	}
	for i := 0; i <= target; i++ {
		bd.total += 1 + len(bd.df.stages[i].Commands)
	}
	bd.total += len(bd.opts.Labels) // one LABEL step each, as Docker's classic builder
	if err := bd.buildStages(ctx, target); err != nil {
		return "", err
	}
	last := bd.stages[target]
	if len(bd.opts.Labels) > 0 {
		if err := bd.labelStep(ctx, last); err != nil {
			return "", err
		}
	}
	if last.imageID == "" {
		//lint:ignore ST1005 Docker's wording
		return "", fmt.Errorf("No image was generated. Is your Dockerfile empty?: %w", errdefs.ErrInvalidArgument)
	}
	return last.imageID, nil
}

// evalMetaArgs evaluates the ARGs before the first FROM.
func (bd *build) evalMetaArgs() error {
	// The platform args are set in the global scope, as BuildKit sets
	// them; a stage sees them once it declares them (ARG TARGETARCH).
	p := image.HostPlatform()
	bd.metaArgs = map[string]string{}
	for _, prefix := range []string{"BUILD", "TARGET"} {
		bd.metaArgs[prefix+"PLATFORM"] = image.FormatPlatform(p)
		bd.metaArgs[prefix+"OS"] = p.OS
		bd.metaArgs[prefix+"ARCH"] = p.Architecture
		bd.metaArgs[prefix+"VARIANT"] = p.Variant
	}
	for _, a := range bd.df.metaArgs {
		for _, kv := range a.Args {
			bd.markUsed(kv.Key)
			if v, ok := bd.opts.BuildArgs[kv.Key]; ok && v != nil {
				bd.metaArgs[kv.Key] = *v
				continue
			}
			if kv.Value != nil {
				v, err := bd.expand(*kv.Value, envGetter{args: bd.metaArgs})
				if err != nil {
					return fmt.Errorf("ARG %s: %w: %w", kv.Key, err, errdefs.ErrInvalidArgument)
				}
				bd.metaArgs[kv.Key] = v
			}
		}
	}
	return nil
}

func (bd *build) expand(word string, env envGetter) (string, error) {
	s, _, err := bd.lex.ProcessWord(word, env)
	return s, err
}

// stepf prints a "Step n/N : text" line.
func (bd *build) stepf(text string) {
	bd.step++
	fmt.Fprintf(bd.opts.Out, "Step %d/%d : %s\n", bd.step, bd.total, text)
}

// buildStage builds stage i: its FROM, then each instruction.
func (bd *build) buildStage(ctx context.Context, i int) (*stageState, error) {
	s := bd.df.stages[i]
	bd.stepf(strings.TrimSpace(s.SourceCode))
	st, err := bd.from(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("dockerfile line %d: %s: %w", fromLine(s), strings.TrimSpace(s.SourceCode), err)
	}
	if err := bd.runTriggers(ctx, st); err != nil {
		if ee := (*ExitError)(nil); errors.As(err, &ee) {
			return nil, ee
		}
		return nil, fmt.Errorf("dockerfile line %d: %s: %w", fromLine(s), strings.TrimSpace(s.SourceCode), err)
	}
	for _, cmd := range s.Commands {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		bd.stepf(commandText(cmd))
		if err := bd.dispatch(ctx, st, cmd); err != nil {
			if ee := (*ExitError)(nil); errors.As(err, &ee) {
				return nil, ee // Docker's message, as it is
			}
			return nil, stepError(cmd, err)
		}
	}
	return st, nil
}

// fromLine is the Dockerfile line of stage s's FROM.
func fromLine(s instructions.Stage) int {
	if len(s.Location) > 0 {
		return s.Location[0].Start.Line
	}
	return 0
}

// from starts a stage from scratch, an earlier stage or an image.
func (bd *build) from(ctx context.Context, s instructions.Stage) (*stageState, error) {
	st := &stageState{name: s.Name, args: map[string]string{}}
	if s.Platform != "" {
		p, err := bd.expand(s.Platform, envGetter{args: bd.metaArgs})
		if err != nil {
			return nil, fmt.Errorf("--platform: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		want, err := image.ParsePlatform(p)
		if err != nil {
			return nil, err
		}
		host := image.HostPlatform()
		if want.OS != host.OS || want.Architecture != host.Architecture {
			return nil, fmt.Errorf("--platform=%s: building for another platform is not supported: %w", p, errdefs.ErrNotImplemented)
		}
	}
	base, err := bd.expand(s.BaseName, envGetter{args: bd.metaArgs})
	if err != nil {
		return nil, fmt.Errorf("base name %s: %w: %w", s.BaseName, err, errdefs.ErrInvalidArgument)
	}
	if base == "" {
		return nil, fmt.Errorf("base name (%s) should not be blank: %w", s.BaseName, errdefs.ErrInvalidArgument)
	}
	if strings.EqualFold(base, "scratch") {
		st.defaultPath()
		return st, nil
	}
	if prev, ok := bd.stageNamed(base, false); ok {
		st.imageID = prev.imageID
		st.conf = cloneConfig(prev.conf)
		if len(st.conf.OnBuild) == 0 { // else after the triggers
			bd.printID(st.imageID)
		}
		return st, nil
	}
	id, err := bd.baseImage(ctx, base)
	if err != nil {
		return nil, err
	}
	st.imageID = id
	if st.conf, err = bd.configOf(ctx, id); err != nil {
		return nil, err
	}
	if len(st.conf.OnBuild) == 0 { // else after the triggers
		bd.printID(id)
	}
	st.defaultPath()
	return st, nil
}

// defaultPath gives the stage the default PATH when its base has none,
// as Docker's builder does, so RUN finds its commands and the image
// records it.
func (st *stageState) defaultPath() {
	if _, ok := (envGetter{env: st.conf.Env}).Get("PATH"); !ok {
		st.conf.Env = append([]string{"PATH=" + defaultPathEnv}, st.conf.Env...)
	}
}

// defaultPathEnv is Docker's default PATH on Linux.
const defaultPathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// baseImage finds (or, when absent or with Pull, pulls) the image name.
func (bd *build) baseImage(ctx context.Context, name string) (digest.Digest, error) {
	imgs := bd.b.cfg.Images
	var notFound error
	if !bd.opts.Pull {
		img, err := imgs.Resolve(ctx, name)
		if err == nil {
			bd.holdImage(img.ID)
			return img.ID, nil
		}
		if !errdefs.IsNotFound(err) {
			return "", err
		}
		notFound = err
	}
	res, err := imgs.Pull(ctx, name, image.PullOptions{})
	if err != nil {
		if notFound != nil && errdefs.IsNotImplemented(err) {
			return "", notFound // no registry to pull from
		}
		return "", fmt.Errorf("pull %s: %w", name, err)
	}
	bd.holdImage(res.Image.ID)
	return res.Image.ID, nil
}

// configOf reads the run config of image id, Docker's fields included.
func (bd *build) configOf(ctx context.Context, id digest.Digest) (imageConfig, error) {
	imgs := bd.b.cfg.Images
	img, err := imgs.Resolve(ctx, id.String())
	if err != nil {
		return imageConfig{}, err
	}
	raw, err := imgs.RawConfig(ctx, img)
	if err != nil {
		return imageConfig{}, err
	}
	var top struct {
		Config *imageConfig `json:"config"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return imageConfig{}, fmt.Errorf("image %s: parse config: %w: %w", shortID(id), err, errdefs.ErrDataLoss)
	}
	if top.Config == nil {
		return imageConfig{}, nil
	}
	return *top.Config, nil
}

// cloneConfig returns a deep copy of c.
func cloneConfig(c imageConfig) imageConfig {
	out := c
	out.Env = slices.Clone(c.Env)
	out.Entrypoint = slices.Clone(c.Entrypoint)
	out.Cmd = slices.Clone(c.Cmd)
	out.OnBuild = slices.Clone(c.OnBuild)
	out.Shell = slices.Clone(c.Shell)
	if c.Healthcheck != nil {
		h := *c.Healthcheck
		h.Test = slices.Clone(h.Test)
		out.Healthcheck = &h
	}
	if c.ExposedPorts != nil {
		out.ExposedPorts = map[string]struct{}{}
		for k := range c.ExposedPorts {
			out.ExposedPorts[k] = struct{}{}
		}
	}
	if c.Volumes != nil {
		out.Volumes = map[string]struct{}{}
		for k := range c.Volumes {
			out.Volumes[k] = struct{}{}
		}
	}
	if c.Labels != nil {
		out.Labels = map[string]string{}
		for k, v := range c.Labels {
			out.Labels[k] = v
		}
	}
	return out
}

// printID prints " ---> <short id>".
func (bd *build) printID(id digest.Digest) {
	fmt.Fprintf(bd.opts.Out, " ---> %s\n", shortID(id))
}

// shell is the stage's shell for shell-form commands.
func (st *stageState) shell() []string {
	if len(st.conf.Shell) > 0 {
		return slices.Clone(st.conf.Shell)
	}
	return []string{"/bin/sh", "-c"}
}

// env is what variables expand from in the stage.
func (st *stageState) env() envGetter {
	return envGetter{env: st.conf.Env, args: st.args}
}
