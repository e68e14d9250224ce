#!/usr/bin/env bash
# The main job through the daemon: start berthd on roots of its own, make a
# busybox image offline from Debian's busybox-static, and run a container
# from it through the Engine API (the berth CLI when built, else the docker
# CLI). berthd is stopped and everything it made is removed on exit.
set -euo pipefail
bin=$(realpath "${1:-bin}")
work=$(mktemp -d /var/tmp/berth-demo.XXXXXX)
sock="$work/berth.sock"
bridge="bdemo$$"
bridge=${bridge:0:15}
cleanup() {
  if [ -n "${pid:-}" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  # What berthd keeps while down for live restore: the namespace mount,
  # its bridge and its nftables table.
  umount -l "$work/exec/netns" 2>/dev/null || true
  ip link del "$bridge" 2>/dev/null || true
  nft delete table inet "berth-$bridge" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /usr/bin/busybox "$work/rootfs/bin/busybox"
for applet in $(/usr/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$work/rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .

echo '{}' > "$work/daemon.json"
"$bin/berthd" -H "unix://$sock" --data-root "$work/data" --exec-root "$work/exec" \
  --config-file "$work/daemon.json" --bridge "$bridge" >"$work/berthd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done

cli="$bin/berth"
if ! "$cli" -H "unix://$sock" version >/dev/null 2>&1; then
  cli=docker
fi
"$cli" -H "unix://$sock" import --change 'CMD ["sh"]' "$work/busybox.tar" demo/busybox:latest >/dev/null
"$cli" -H "unix://$sock" run --rm --name berth-demo demo/busybox \
  sh -c 'echo "hello from a berth container: pid $$, host $(hostname), address $(ip -4 -o addr show eth0 | awk "{print \$4}"), kernel $(uname -r)"'
