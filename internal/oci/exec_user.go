package oci

import specs "github.com/opencontainers/runtime-spec/specs-go"

// ResolveUser returns the process user for Docker's --user value user
// ("", "uid", "name", "uid:gid", "name:group") and the --group-add values,
// looking names up in rootfs's /etc/passwd and /etc/group the way Generate
// does for a container's process (for `docker exec -u`). Umask is left
// unset. An unknown name is ErrInvalidArgument with Docker's wording.
func ResolveUser(rootfs, user string, groupAdd []string) (specs.User, error) {
	return resolveUser(rootfs, user, groupAdd)
}

// AllCapabilities returns the names ("CAP_...") of every capability the
// running kernel knows and the calling process's bounding set holds, in
// number order: what --privileged grants (a capability outside the
// bounding set cannot be granted). Each call returns a new slice.
func AllCapabilities() []string { return allCapabilities() }
