#!/usr/bin/env bash
# Quick start, step 1: install what is missing (Debian packages), build
# berth, and run the main job (a container started from a busybox bundle).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
scripts/install-deps.sh
make build
scripts/demo.sh bin/berth-runtime
