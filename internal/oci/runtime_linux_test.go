package oci_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/oci"
	"github.com/berth-project/berth/internal/testutil"
	"github.com/moby/moby/api/types/container"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := testutil.CleanupCache(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// probeScript prints, one "key=value" per line, what the tests check of a
// container's process: its capability masks, seccomp mode and no_new_privs,
// its ids, whether it may mount or make a user namespace, what /proc/kcore
// and /proc/keys are (masked: /dev/null, 1:3), whether /sys/firmware is
// empty, whether it can write to /, /tmp and /proc/sys, and the hostname,
// /etc/hosts and a sysctl it sees.
const probeScript = `
status() { grep "^$1:" /proc/self/status | tr -d ' \t' | sed "s/^$1:/$1=/"; }
status CapEff; status CapBnd; status CapPrm; status Seccomp; status NoNewPrivs
echo "id=$(id)"
if mount -t tmpfs x /tmp 2>/dev/null; then echo mount=ok; umount /tmp; else echo mount=denied; fi
if unshare -U true 2>/dev/null; then echo userns=ok; else echo userns=denied; fi
for f in /proc/kcore /proc/keys; do
	if [ -e $f ]; then echo "$f=$(stat -c '%F %t:%T' $f)"; else echo "$f=missing"; fi
done
echo "firmware=$(ls -A /sys/firmware | wc -l)"
if touch /probe 2>/dev/null; then echo rootfs=rw; else echo rootfs=ro; fi
if touch /tmp/probe 2>/dev/null; then echo tmp=rw; else echo tmp=ro; fi
if echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null; then echo procsys=rw; else echo procsys=ro; fi
echo "hostname=$(hostname)"
echo "hosts=$(cat /etc/hosts)"
echo "portstart=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)"
`

// runProbe generates the spec of a container running probeScript in a
// busybox rootfs, changed by change, runs it with the real berth-runtime
// and returns what the script printed.
func runProbe(t *testing.T, change func(*oci.Input)) map[string]string {
	t.Helper()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := testutil.BusyboxRootfs(rootfs); err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 probe-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var idBytes [32]byte
	if _, err := rand.Read(idBytes[:]); err != nil {
		t.Fatal(err)
	}
	in := oci.Input{
		ID:         hex.EncodeToString(idBytes[:]),
		Config:     &container.Config{Cmd: []string{"sh", "-c", probeScript}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
		Rootfs:     rootfs,
		HostsPath:  hosts,
	}
	if change != nil {
		change(&in)
	}
	spec, err := oci.Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}

	root := testutil.RootDir(t)
	id := testutil.ContainerID(t)
	testutil.CheckNoLeaks(t, id, dir)
	stdout, stderr, err := testutil.Runtime(t, root, "run", "--bundle", dir, id)
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	out := map[string]string{"hostname-want": in.ID[:12], "/proc/kcore-want": "missing"}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		out["/proc/kcore-want"] = masked
	}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		k, v, _ := strings.Cut(line, "=")
		out[k] = v
	}
	return out
}

// masked is what the probe prints for a path masked with /dev/null.
const masked = "character special file 1:3"

func checkProbe(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// TestGeneratedSpecRuns runs generated specs through the real runtime and
// kernel: Docker's default capabilities (CapEff 00000000a80425fb, as in a
// Docker container), the default seccomp filter (it denies unshare, which a
// container without it may call), masked /proc/kcore and read-only
// /proc/sys; then a non-root user with a read-only rootfs and a tmpfs.
func TestGeneratedSpecRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (make test runs as root)")
	}
	got := runProbe(t, nil)
	checkProbe(t, got, map[string]string{
		"CapEff": "00000000a80425fb", "CapBnd": "00000000a80425fb", "CapPrm": "00000000a80425fb",
		"Seccomp": "2", "NoNewPrivs": "0",
		"id":    "uid=0(root) gid=0(root) groups=0(root)",
		"mount": "denied", "userns": "denied",
		"/proc/kcore": got["/proc/kcore-want"], "/proc/keys": masked, "firmware": "0",
		"rootfs": "rw", "tmp": "rw", "procsys": "ro",
		"hostname": got["hostname-want"], "hosts": "127.0.0.1 probe-host", "portstart": "0",
	})

	// The same without seccomp: unshare now works, so the filter is what
	// refused it above; mount still needs CAP_SYS_ADMIN.
	got = runProbe(t, func(in *oci.Input) { in.HostConfig.SecurityOpt = []string{"seccomp=unconfined", "no-new-privileges"} })
	checkProbe(t, got, map[string]string{
		"CapEff": "00000000a80425fb", "Seccomp": "0", "NoNewPrivs": "1", "mount": "denied", "userns": "ok",
	})

	// A non-root user keeps only the bounding set; --read-only with a
	// writable tmpfs on /tmp.
	got = runProbe(t, func(in *oci.Input) {
		in.Config.User = "berth"
		in.HostConfig.ReadonlyRootfs = true
		in.HostConfig.Tmpfs = map[string]string{"/tmp": "mode=1777"}
	})
	checkProbe(t, got, map[string]string{
		"CapEff": "0000000000000000", "CapPrm": "0000000000000000", "CapBnd": "00000000a80425fb", "Seccomp": "2",
		"id":     fmt.Sprintf("uid=%d(berth) gid=%d(berth) groups=%d(berth)", testutil.UserUID, testutil.UserGID, testutil.UserGID),
		"rootfs": "ro", "tmp": "rw", "mount": "denied", "/proc/keys": masked,
	})

	// Privileged: every capability of the test's own bounding set (the
	// runtime cannot grant more: on a host whose bounding set lacks one,
	// asking for every capability the kernel knows fails), no seccomp,
	// nothing masked.
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var bnd string
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			bnd = strings.TrimSpace(v)
		}
	}
	got = runProbe(t, func(in *oci.Input) { in.HostConfig.Privileged = true })
	checkProbe(t, got, map[string]string{
		"CapEff": bnd, "CapBnd": bnd, "CapPrm": bnd, "Seccomp": "0", "mount": "ok", "/proc/keys": "regular empty file 0:0", "procsys": "rw",
	})
}
