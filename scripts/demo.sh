#!/usr/bin/env bash
# The main job, end to end: make a busybox bundle offline from Debian's
# busybox-static, and run a container from it with berth-runtime, printing a
# line from inside. Everything it creates is removed on exit.
set -euo pipefail
rt=$(realpath "${1:-bin/berth-runtime}")
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /usr/bin/busybox "$work/rootfs/bin/busybox"
for applet in $(/usr/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$work/rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$work/rootfs/etc/passwd"

cd "$work"
"$rt" spec
# Not a terminal, and a command that shows where it runs.
sed -i -e 's/"terminal": true/"terminal": false/' \
  -e 's|^\(\t*\)"sh"$|\1"sh", "-c", "echo \\"hello from a berth container: I am pid $$ on host $(hostname), uid $(id -u), kernel $(uname -r)\\""|' config.json
"$rt" --root "$work/state" run "demo-$$"
