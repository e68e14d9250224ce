#!/usr/bin/env bash
# Quick start, step 1: install what is missing (Debian packages), build
# berth, and run the main job: berthd started on roots of its own, a busybox
# image made offline, and a container run from it through the Engine API.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
scripts/install-deps.sh
make build
scripts/demo-daemon.sh bin
