// Package dockerd runs a reference Docker daemon (Debian's docker.io) of
// a bench's own, beside whatever else runs on the machine, and the docker
// CLI against it. It is Linux only.
package dockerd
