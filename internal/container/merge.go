package container

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	api "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/errdefs"
)

// MergeImageConfig fills cfg's unset fields from the image's config, as
// Docker does at create: Env is the image's with cfg's entries added or
// overriding by key; Cmd and Entrypoint come from the image unless cfg
// sets an entrypoint (then the image's Cmd is dropped too, unless cfg has
// one); User, WorkingDir, StopSignal, ExposedPorts, Volumes, Labels and
// Healthcheck are inherited where cfg leaves them empty. cfg is changed in
// place.
func MergeImageConfig(cfg *api.Config, img ocispec.ImageConfig, health *api.HealthConfig) {
	cfg.Env = mergeEnv(img.Env, cfg.Env)
	if len(cfg.Entrypoint) == 0 {
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = slices.Clone(img.Cmd)
		}
		if cfg.Entrypoint == nil {
			cfg.Entrypoint = slices.Clone(img.Entrypoint)
		}
	}
	if cfg.User == "" {
		cfg.User = img.User
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = img.WorkingDir
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = img.StopSignal
	}
	if len(img.ExposedPorts) > 0 {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		for p := range img.ExposedPorts {
			if port, err := network.ParsePort(p); err == nil {
				cfg.ExposedPorts[port] = struct{}{}
			}
		}
	}
	if len(img.Volumes) > 0 {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for v := range img.Volumes {
			cfg.Volumes[v] = struct{}{}
		}
	}
	if len(img.Labels) > 0 {
		labels := maps.Clone(img.Labels)
		maps.Copy(labels, cfg.Labels)
		cfg.Labels = labels
	}
	if health != nil {
		if cfg.Healthcheck == nil {
			h := *health
			cfg.Healthcheck = &h
		} else if len(cfg.Healthcheck.Test) == 0 {
			// Only the timings were given: keep the image's test.
			cfg.Healthcheck.Test = health.Test
		}
		if cfg.Healthcheck != nil && cfg.Healthcheck.Interval == 0 {
			cfg.Healthcheck.Interval = health.Interval
		}
		if cfg.Healthcheck != nil && cfg.Healthcheck.Timeout == 0 {
			cfg.Healthcheck.Timeout = health.Timeout
		}
		if cfg.Healthcheck != nil && cfg.Healthcheck.StartPeriod == 0 {
			cfg.Healthcheck.StartPeriod = health.StartPeriod
		}
		if cfg.Healthcheck != nil && cfg.Healthcheck.Retries == 0 {
			cfg.Healthcheck.Retries = health.Retries
		}
	}
}

// mergeEnv returns base with over's entries added, an entry of over
// replacing base's entry of the same key.
func mergeEnv(base, over []string) []string {
	out := slices.Clone(base)
	index := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// Command returns the process path and arguments of a merged config, or
// Docker's error when there is none.
func Command(cfg *api.Config) (string, []string, error) {
	args := append(slices.Clone([]string(cfg.Entrypoint)), cfg.Cmd...)
	if len(args) == 0 {
		return "", nil, fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	return args[0], args[1:], nil
}
