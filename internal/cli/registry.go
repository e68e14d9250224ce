package cli

import (
	"context"
	"fmt"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
)

// IndexServer is the key config.json uses for Docker Hub credentials.
const IndexServer = "https://index.docker.io/v1/"

// authKey is the config.json key of a registry host.
func authKey(host string) string {
	if host == "" || host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io" {
		return IndexServer
	}
	return host
}

// parseRef normalises an image reference; a bad one gets docker's wording.
func parseRef(ref string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format: %w", err)
	}
	return named, nil
}

// registryAuth is the base64 X-Registry-Auth header for the registry of
// ref, from config.json; empty when there are no credentials.
func (c *CLI) registryAuth(ref string) (string, error) {
	named, err := parseRef(ref)
	if err != nil {
		return "", err
	}
	cfg, err := c.authConfig(reference.Domain(named))
	if err != nil {
		return "", err
	}
	if cfg == (registry.AuthConfig{}) {
		return "", nil
	}
	return authconfig.Encode(cfg)
}

// authConfig reads the stored credentials of a registry host.
func (c *CLI) authConfig(host string) (registry.AuthConfig, error) {
	cf, err := c.ConfigFile()
	if err != nil {
		return registry.AuthConfig{}, err
	}
	a, err := cf.GetAuthConfig(authKey(host))
	if err != nil {
		return registry.AuthConfig{}, fmt.Errorf("read credentials for %s: %w", host, err)
	}
	return registry.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth,
		ServerAddress: a.ServerAddress, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}, nil
}

// privilegeFunc is called by pull and push when the registry refuses
// anonymous access and no credentials were sent; berth does not prompt,
// so it tells the user to log in.
func privilegeFunc(host string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		return "", fmt.Errorf("authentication required: run 'berth login %s'", host)
	}
}
