//go:build linux

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berth-project/berth/internal/network/bridge"
	"github.com/berth-project/berth/internal/network/nettest"
	"github.com/berth-project/berth/internal/network/resolvconf"
)

// The network scenarios send nothing off the machine: they talk to
// loopback and to the test daemons' bridges only. Every container on a
// user-defined network gets --dns with a resolver the test runs on
// loopback, where its embedded DNS server forwards what it cannot answer,
// and containers on the default bridge never ask the host's resolvers.

// netEnv is a berthd of a network scenario, with busybox imported and an
// address plan of its own so that parallel scenarios never share a subnet:
// the default bridge is 10.213.<4k>.0/24, the test's own networks take
// 10.213.<4k+1..3>.0/24 (subnet(i)), and networks created without a
// subnet come from 10.214.<16k>.0/20.
type netEnv struct {
	t   *testing.T
	d   *Daemon
	c   *CLI
	k   int
	dns string // the loopback resolver every container on a user network uses
}

var netSlot atomic.Int32

func newNetEnv(t *testing.T) *netEnv {
	t.Helper()
	k := int(netSlot.Add(1))
	d := startDaemon(t, "--bip", fmt.Sprintf("10.213.%d.1/24", 4*k),
		"--default-address-pool", fmt.Sprintf("base=10.214.%d.0/20,size=24", 16*k))
	e := &netEnv{t: t, d: d, c: d.cli(t), k: k}
	importBusybox(t, e.c)
	e.dns = loopbackResolver(t)
	return e
}

// gateway is the default bridge's address on the host.
func (e *netEnv) gateway() string { return fmt.Sprintf("10.213.%d.1", 4*e.k) }

// subnet is the test's i-th own /24 (i is 1, 2 or 3), e.g. "10.213.5.0".
func (e *netEnv) subnet(i int) string { return fmt.Sprintf("10.213.%d.0", 4*e.k+i) }

// detached runs docker run -d with args and removes the container (with
// its anonymous volumes) when the test ends; it returns the container's ID.
func (e *netEnv) detached(args ...string) string {
	e.t.Helper()
	id := strings.TrimSpace(e.c.ok(append([]string{"run", "-d"}, args...)...))
	e.t.Cleanup(func() { e.c.run("", "rm", "-fv", id) })
	return id
}

// network creates a network and removes it when the test ends (after the
// containers started later are removed); it returns its ID.
func (e *netEnv) network(name string, args ...string) string {
	e.t.Helper()
	id := strings.TrimSpace(e.c.ok(append(append([]string{"network", "create"}, args...), name)...))
	e.t.Cleanup(func() { e.c.run("", "network", "rm", id) })
	return id
}

// inspectf is docker inspect -f format ref, trimmed.
func (e *netEnv) inspectf(format, ref string) string {
	e.t.Helper()
	return strings.TrimSpace(e.c.ok("inspect", "-f", format, ref))
}

// sections splits output at lines "@@".
func sections(out string) []string { return strings.Split(out, "@@\n") }

// inetAddr returns the IPv4 address `ip -4 addr show` prints first.
func inetAddr(t *testing.T, out string) netip.Prefix {
	t.Helper()
	for _, f := range strings.Split(out, "\n") {
		fs := strings.Fields(f)
		if len(fs) >= 2 && fs[0] == "inet" && fs[1] != "127.0.0.1/8" {
			p, err := netip.ParsePrefix(fs[1])
			if err != nil {
				t.Fatalf("ip addr: %q: %v", f, err)
			}
			return p
		}
	}
	t.Fatalf("no IPv4 address in:\n%s", out)
	return netip.Prefix{}
}

// lookups parses busybox nslookup output: the addresses of the answer.
func lookups(out string) []string {
	var addrs []string
	answer := false
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Name:") {
			answer = true
		}
		if a, ok := strings.CutPrefix(line, "Address:"); ok && answer {
			addrs = append(addrs, strings.TrimSpace(a))
		}
	}
	return addrs
}

// loopbackResolver serves DNS on UDP port 53 of a random 127.53.0.0/16
// address: outside.test. is 192.0.2.99 (TEST-NET-1, never contacted),
// every other name is NXDOMAIN. It returns the address.
func loopbackResolver(t *testing.T) string {
	t.Helper()
	for range 20 {
		b := make([]byte, 2)
		_, _ = rand.Read(b)
		ip := fmt.Sprintf("127.53.%d.%d", 1+b[0]%250, 1+b[1]%250)
		if _, err := nettest.StartResolver(t, ip+":53", "outside.test.", netip.MustParseAddr("192.0.2.99")); err == nil {
			return ip
		}
	}
	t.Fatal("no free loopback address for the test's resolver")
	return ""
}

// freePorts returns n consecutive TCP and UDP ports nothing uses on the
// host right now.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ok := base+n <= 65535
		for p := base; ok && p < base+n; p++ {
			tl, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
			if err != nil {
				ok = false
				break
			}
			tl.Close()
			ul, err := net.ListenPacket("udp", fmt.Sprintf(":%d", p))
			if err != nil {
				ok = false
				break
			}
			ul.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// httpGet fetches url from the host, retrying until deadline: a container
// just started may not listen yet.
func httpGet(t *testing.T, url string, wait time.Duration) (string, error) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(wait)
	for {
		resp, err := client.Get(url)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(b), nil
			}
			err = fmt.Errorf("status %s, %v", resp.Status, rerr)
		}
		if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// udpEcho is a static program that echoes UDP datagrams on the port of
// its argument, prefixed with "echo ": busybox's nc has no UDP mode. It
// is built once per test binary.
var udpEcho struct {
	once sync.Once
	path string
	err  error
}

const udpEchoSource = `package main

import (
	"net"
	"os"
)

func main() {
	pc, err := net.ListenPacket("udp", ":"+os.Args[1])
	if err != nil {
		os.Exit(1)
	}
	buf := make([]byte, 2048)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			os.Exit(1)
		}
		pc.WriteTo(append([]byte("echo "), buf[:n]...), addr)
	}
}
`

func udpEchoBinary(t *testing.T) string {
	t.Helper()
	udpEcho.once.Do(func() {
		dir, err := os.MkdirTemp("", "berth-e2e-udpecho-")
		if err != nil {
			udpEcho.err = err
			return
		}
		tempDirs = append(tempDirs, dir)
		if udpEcho.err = os.WriteFile(filepath.Join(dir, "main.go"), []byte(udpEchoSource), 0o644); udpEcho.err != nil {
			return
		}
		udpEcho.path = filepath.Join(dir, "udpecho")
		cmd := exec.Command("go", "build", "-o", udpEcho.path, "main.go")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			udpEcho.err = fmt.Errorf("go build udpecho: %v\n%s", err, out)
		}
	})
	if udpEcho.err != nil {
		t.Fatal(udpEcho.err)
	}
	return udpEcho.path
}

// udpExchange sends msg to addr from the host and returns the reply,
// retrying until deadline.
func udpExchange(t *testing.T, addr, msg string, wait time.Duration) (string, error) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return "", err
		}
		_, err = c.Write([]byte(msg))
		if err == nil {
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			buf := make([]byte, 256)
			var n int
			n, err = c.Read(buf)
			if err == nil {
				c.Close()
				return string(buf[:n]), nil
			}
		}
		c.Close()
		if time.Now().After(deadline) {
			return "", err
		}
	}
}

// bridgePorts lists the interfaces on a host bridge.
func bridgePorts(t *testing.T, name string) []string {
	t.Helper()
	ports, err := bridge.Ports(name)
	if err != nil {
		t.Fatalf("ports of bridge %s: %v", name, err)
	}
	return ports
}

// hostResolvers are the nameservers a container on the default bridge
// gets from the host's resolv.conf: the host's without loopback ones, or
// Docker's fallback when none is left.
func hostResolvers(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, ns := range resolvconf.Parse(b).Nameservers {
		if !ns.IsLoopback() && ns.Is4() {
			out = append(out, ns.String())
		}
	}
	if len(out) == 0 {
		for _, ns := range resolvconf.FallbackIPv4 {
			out = append(out, ns.String())
		}
	}
	return out
}

// resolvField returns the values of the keyword's lines of a resolv.conf.
func resolvField(conf, keyword string) []string {
	var out []string
	for _, line := range strings.Split(conf, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == keyword {
			out = append(out, f[1:]...)
		}
	}
	return out
}

// TestDefaultBridge checks a container's addresses, route and files on
// the default bridge: /etc/hosts with --hostname and --add-host (and
// host-gateway), /etc/hostname, resolv.conf from the host's (loopback
// resolvers dropped) or from --dns, --dns-search and --dns-option; and
// that containers there do not resolve each other's names.
func TestDefaultBridge(t *testing.T) {
	t.Parallel()
	e := newNetEnv(t)
	gw := e.gateway()
	out := e.c.ok("run", "--rm", "--hostname", "hst", "--add-host", "foo.test:192.0.2.77", "--add-host", "gw.test:host-gateway",
		"busybox", "sh", "-c", "ip -4 addr show eth0; ip route; echo @@; cat /etc/hosts; echo @@; cat /etc/hostname; echo @@; cat /etc/resolv.conf")
	s := sections(out)
	if len(s) != 4 {
		t.Fatalf("output:\n%s", out)
	}
	addr := inetAddr(t, s[0])
	if !netip.MustParsePrefix(gw+"/24").Contains(addr.Addr()) || addr.Bits() != 24 || addr.Addr().String() == gw {
		t.Errorf("eth0 address %s not in the --bip subnet %s/24", addr, gw)
	}
	if !strings.Contains(s[0], "default via "+gw+" dev eth0") {
		t.Errorf("no default route via %s:\n%s", gw, s[0])
	}
	for _, want := range []string{"127.0.0.1\tlocalhost", "192.0.2.77\tfoo.test", gw + "\tgw.test", addr.Addr().String() + "\thst"} {
		if !strings.Contains(s[1], want+"\n") {
			t.Errorf("/etc/hosts lacks %q:\n%s", want, s[1])
		}
	}
	if s[2] != "hst\n" {
		t.Errorf("/etc/hostname = %q", s[2])
	}
	if got, want := resolvField(s[3], "nameserver"), hostResolvers(t); !slices.Equal(got, want) {
		t.Errorf("resolv.conf nameservers %v, want the host's non-loopback ones %v:\n%s", got, want, s[3])
	}

	out = e.c.ok("run", "--rm", "--dns", "127.0.0.1", "--dns", "192.0.2.53", "--dns-search", "a.test", "--dns-search", "b.test",
		"--dns-option", "ndots:2", "busybox", "cat", "/etc/resolv.conf")
	if ns, search, opts := resolvField(out, "nameserver"), resolvField(out, "search"), resolvField(out, "options"); !slices.Equal(ns, []string{"127.0.0.1", "192.0.2.53"}) ||
		!slices.Equal(search, []string{"a.test", "b.test"}) || !slices.Equal(opts, []string{"ndots:2"}) {
		t.Errorf("resolv.conf with --dns, --dns-search, --dns-option:\n%s", out)
	}

	// No embedded DNS on the default bridge: nothing answers on
	// 127.0.0.11 and a neighbour's name does not resolve (the container's
	// only resolver is its own loopback, where nothing listens).
	e.detached("--name", "peer", "busybox", "sleep", "300")
	out = e.c.ok("run", "--rm", "--dns", "127.0.0.1", "busybox", "sh", "-c",
		"grep -c 127.0.0.11 /etc/resolv.conf; nslookup peer 127.0.0.11 >/dev/null 2>&1; echo nslookup=$?; ping -c1 -W1 peer >/dev/null 2>&1; echo ping=$?")
	if out != "0\nnslookup=1\nping=1\n" {
		t.Errorf("name resolution on the default bridge:\n%s", out)
	}

	// Legacy links: a hosts line and Docker's variables, the link
	// recorded as Docker shows it; the linked container must exist and run.
	e.detached("--name", "linked-db", "-e", "PW=x", "-e", "PATH=/bin", "--expose", "5432", "--expose", "53/udp", "busybox", "sleep", "300")
	dbIP := e.inspectf("{{.NetworkSettings.Networks.bridge.IPAddress}}", "linked-db")
	dbHost := e.inspectf("{{.Config.Hostname}}", "linked-db")
	e.c.ok("create", "--name", "linker", "--link", "linked-db:my-db", "--dns", "127.0.0.1", "busybox", "sh", "-c", "grep my-db /etc/hosts; env | grep ^MY_DB")
	t.Cleanup(func() { e.c.run("", "rm", "-f", "linker", "linker2") })
	if got := e.inspectf("{{.HostConfig.Links}}", "linker"); got != "[/linked-db:/linker/my-db]" {
		t.Errorf("linker's HostConfig.Links = %s", got)
	}
	lines := strings.Split(strings.TrimSpace(e.c.ok("start", "-a", "linker")), "\n")
	slices.Sort(lines[1:])
	want := []string{dbIP + "\tmy-db " + dbHost + " linked-db",
		"MY_DB_ENV_PW=x",
		"MY_DB_NAME=/linker/my-db",
		"MY_DB_PORT=udp://" + dbIP + ":53",
		"MY_DB_PORT_5432_TCP=tcp://" + dbIP + ":5432",
		"MY_DB_PORT_5432_TCP_ADDR=" + dbIP,
		"MY_DB_PORT_5432_TCP_PORT=5432",
		"MY_DB_PORT_5432_TCP_PROTO=tcp",
		"MY_DB_PORT_53_UDP=udp://" + dbIP + ":53",
		"MY_DB_PORT_53_UDP_ADDR=" + dbIP,
		"MY_DB_PORT_53_UDP_PORT=53",
		"MY_DB_PORT_53_UDP_PROTO=udp",
	}
	slices.Sort(want[1:])
	if !slices.Equal(lines, want) {
		t.Errorf("a linked container's hosts line and variables:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if stderr := e.c.fail(1, "create", "--link", "no-such:x", "busybox", "true"); !strings.Contains(stderr, "could not get container for no-such") {
		t.Errorf("link to a missing container: %s", stderr)
	}
	e.c.ok("stop", "-t", "0", "linked-db")
	if stderr := e.c.fail(1, "start", "linker"); !strings.Contains(stderr, "Cannot link to a non running container: /linked-db AS /linker/my-db") {
		t.Errorf("start linked to a stopped container: %s", stderr)
	}
	// Renames follow both ends of a link.
	e.c.ok("rename", "linked-db", "linked-db2")
	e.c.ok("rename", "linker", "linker2")
	if got := e.inspectf("{{.HostConfig.Links}}", "linker2"); got != "[/linked-db2:/linker2/my-db]" {
		t.Errorf("links after renaming both ends = %s", got)
	}
}

// TestPublishedPorts publishes ports in every form and reaches them from
// the host on 127.0.0.1, from another container through the host's
// bridge address (hairpin) and over UDP; checks docker port, -P with an
// image's EXPOSE, Docker's errors for a taken port, and that nothing is
// left on the host once the containers are removed.
func TestPublishedPorts(t *testing.T) {
	t.Parallel()
	e := newNetEnv(t)
	echo := udpEchoBinary(t)
	base := freePorts(t, 5)
	pLo, pAll, pR1, pR2, pUDP := base, base+1, base+2, base+3, base+4
	e.detached("--name", "web", "-v", echo+":/udpecho:ro",
		"-p", fmt.Sprintf("127.0.0.1:%d:80", pLo), "-p", fmt.Sprintf("%d:80", pAll),
		"-p", fmt.Sprintf("%d-%d:8080-8081", pR1, pR2), "-p", fmt.Sprintf("%d:9999/udp", pUDP),
		"busybox", "sh", "-c", "mkdir /www && echo hello > /www/f && httpd -p 80 -h /www && httpd -p 8080 -h /www && httpd -p 8081 -h /www && exec /udpecho 9999")
	ip := e.inspectf("{{.NetworkSettings.Networks.bridge.IPAddress}}", "web")

	gotPorts := strings.Split(strings.TrimSpace(e.c.ok("port", "web")), "\n")
	wantPorts := []string{
		fmt.Sprintf("80/tcp -> 0.0.0.0:%d", pAll), fmt.Sprintf("80/tcp -> 127.0.0.1:%d", pLo),
		fmt.Sprintf("8080/tcp -> 0.0.0.0:%d", pR1), fmt.Sprintf("8081/tcp -> 0.0.0.0:%d", pR2),
		fmt.Sprintf("9999/udp -> 0.0.0.0:%d", pUDP),
	}
	slices.Sort(gotPorts)
	slices.Sort(wantPorts)
	if !slices.Equal(gotPorts, wantPorts) {
		t.Errorf("docker port web:\n%s\nwant:\n%s", strings.Join(gotPorts, "\n"), strings.Join(wantPorts, "\n"))
	}
	for _, p := range []int{pLo, pAll, pR1, pR2} {
		if got, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/f", p), 20*time.Second); err != nil || got != "hello\n" {
			t.Errorf("host -> 127.0.0.1:%d = %q, %v", p, got, err)
		}
	}
	// The mapping on all addresses answers on the host's bridge address
	// too; the 127.0.0.1 one does not.
	if got, err := httpGet(t, fmt.Sprintf("http://%s:%d/f", e.gateway(), pAll), 5*time.Second); err != nil || got != "hello\n" {
		t.Errorf("host -> %s:%d = %q, %v", e.gateway(), pAll, got, err)
	}
	if got, err := httpGet(t, fmt.Sprintf("http://%s:%d/f", e.gateway(), pLo), 0); err == nil {
		t.Errorf("127.0.0.1-only port answers on %s: %q", e.gateway(), got)
	}
	if got, err := udpExchange(t, fmt.Sprintf("127.0.0.1:%d", pUDP), "ping", 10*time.Second); err != nil || got != "echo ping" {
		t.Errorf("udp 127.0.0.1:%d = %q, %v", pUDP, got, err)
	}
	out := e.c.ok("run", "--rm", "busybox", "timeout", "10", "wget", "-qO-", fmt.Sprintf("http://%s:%d/f", e.gateway(), pAll))
	if out != "hello\n" {
		t.Errorf("container -> %s:%d (hairpin) = %q", e.gateway(), pAll, out)
	}

	// -P publishes the image's EXPOSE on a random port docker port shows.
	e.c.ok("import", "--change", "EXPOSE 80", "--change", `CMD ["sh"]`, busyboxTar.path, "exposed:latest")
	e.detached("--name", "pweb", "-P", "exposed", "sh", "-c", "mkdir /www && echo p > /www/f && exec httpd -f -p 80 -h /www")
	hp := strings.TrimSpace(e.c.ok("port", "pweb", "80/tcp"))
	ap, err := netip.ParseAddrPort(hp)
	if err != nil || ap.Addr().String() != "0.0.0.0" || ap.Port() < 1024 {
		t.Fatalf("docker port pweb 80/tcp = %q", hp)
	}
	if got, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/f", ap.Port()), 20*time.Second); err != nil || got != "p\n" {
		t.Errorf("-P port %d = %q, %v", ap.Port(), got, err)
	}

	// A port another container publishes, and one a host process holds.
	stderr := e.c.fail(125, "run", "-d", "--name", "clash", "-p", fmt.Sprintf("%d:80", pAll), "busybox", "true")
	e.c.run("", "rm", "-f", "clash")
	if want := fmt.Sprintf("Bind for 0.0.0.0:%d failed: port is already allocated", pAll); !strings.Contains(stderr, want) {
		t.Errorf("published twice: %s\nwant %q", stderr, want)
	}
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	stderr = e.c.fail(125, "run", "-d", "--name", "clash2", "-p", fmt.Sprintf("%d:80", busy), "busybox", "true")
	e.c.run("", "rm", "-f", "clash2")
	if want := fmt.Sprintf("failed to bind host port for 0.0.0.0:%d:", busy); !strings.Contains(stderr, want) || !strings.Contains(stderr, "/tcp: address already in use") {
		t.Errorf("port of a host process: %s\nwant %q", stderr, want)
	}

	// Removed, the containers leave no veth, rule, namespace file or
	// reservation.
	e.c.ok("rm", "-f", "web", "pweb")
	poll(t, "veths of removed containers gone", func() bool { return len(bridgePorts(t, e.d.Bridge)) == 0 })
	for _, l := range mustLinks(t) {
		if bridge.IsHostIfName(l.Attrs().Name) && l.Attrs().MasterIndex == 0 && l.Type() == "veth" {
			if veth, ok := l.(*netlink.Veth); ok && veth.NetNsID < 0 {
				t.Errorf("veth pair %s left on the host", l.Attrs().Name)
			}
		}
	}
	table, err := exec.Command("nft", "list", "table", "inet", "berth-"+e.d.Bridge).CombinedOutput()
	if err != nil {
		t.Fatalf("nft: %v\n%s", err, table)
	}
	if strings.Contains(string(table), ip+":") || strings.Contains(string(table), fmt.Sprintf(" %d ", pAll)) {
		t.Errorf("rules of removed containers left:\n%s", table)
	}
	if ents, err := os.ReadDir(filepath.Join(e.d.ExecRoot, "netns")); err != nil || len(ents) != 0 {
		t.Errorf("namespace files left: %v %v", ents, err)
	}
	for _, p := range []int{pLo, pAll, pR1} {
		if l, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", p)); err != nil {
			t.Errorf("host port %d still held: %v", p, err)
		} else {
			l.Close()
		}
	}
}

// mustLinks lists the host's interfaces, again while the kernel says the
// dump was interrupted by a change.
func mustLinks(t *testing.T) []netlink.Link {
	t.Helper()
	for range 10 {
		ls, err := netlink.LinkList()
		if err == nil {
			return ls
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			t.Fatal(err)
		}
	}
	t.Fatal("list links: every dump interrupted")
	return nil
}

func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// TestUserNetworks drives user-defined networks: create with every IPAM
// option, a label and a bridge name; ls with filters; inspect; names,
// aliases and ID prefixes resolved by the embedded DNS server (which
// forwards other names to the test's loopback resolver); rm refused while
// in use; isolation between networks; connect and disconnect of a running
// container; an internal network without a way out; IPv6; the host, none
// and container:<name> modes; prune.
func TestUserNetworks(t *testing.T) {
	t.Parallel()
	e := newNetEnv(t)
	c, dnsArg := e.c, "--dns="+e.dns
	front, back, inner := e.subnet(1), e.subnet(2), e.subnet(3)
	frontNet := strings.TrimSuffix(front, ".0")
	brFront := "bf" + randHex(10)
	frontID := e.network("front", "--subnet", front+"/24", "--gateway", frontNet+".254", "--ip-range", frontNet+".128/25",
		"--label", "team=a", "-o", "com.docker.network.bridge.name="+brFront)
	e.network("back")
	e.network("inner", "--internal", "--subnet", inner+"/24")
	six := "fd00:b3:" + randHex(4) + ":" + randHex(4) + "::"
	e.network("six", "--ipv6", "--subnet", six+"/64")
	_ = back

	ins := strings.TrimSpace(c.ok("network", "inspect", "-f",
		`{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}} {{.IPRange}}{{end}} {{index .Options "com.docker.network.bridge.name"}} {{.Labels.team}} {{.Internal}} {{.Driver}}`, "front"))
	if want := fmt.Sprintf("%s/24 %s.254 %s.128/25 %s a false bridge", front, frontNet, frontNet, brFront); ins != want {
		t.Errorf("inspect front = %q, want %q", ins, want)
	}
	if addrs, err := bridge.Addrs(brFront); err != nil || len(addrs) == 0 || addrs[0].String() != frontNet+".254/24" {
		t.Errorf("bridge %s on the host: %v, %v", brFront, addrs, err)
	}
	if got := e.inspectf("{{range .IPAM.Config}}{{.Subnet}}{{end}}", "back"); got != fmt.Sprintf("10.214.%d.0/24", 16*e.k) {
		t.Errorf("back's subnet %s, want the first of the address pool", got)
	}
	ls := func(args ...string) string {
		t.Helper()
		lines := strings.Fields(c.ok(append([]string{"network", "ls", "--format", "{{.Name}}"}, args...)...))
		slices.Sort(lines)
		return strings.Join(lines, " ")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "back bridge front host inner none six"},
		{[]string{"--filter", "label=team=a"}, "front"},
		{[]string{"--filter", "type=custom"}, "back front inner six"},
		{[]string{"--filter", "type=builtin"}, "bridge host none"},
		{[]string{"--filter", "driver=null"}, "none"},
		{[]string{"--filter", "name=in"}, "inner"},
		{[]string{"--filter", "id=" + frontID[:12]}, "front"},
	} {
		if got := ls(tc.args...); got != tc.want {
			t.Errorf("network ls %v = %q, want %q", tc.args, got, tc.want)
		}
	}

	// Names, aliases and ID prefixes on the network; other names go to
	// the upstream resolver.
	webID := e.detached("--name", "web", "--network", "front", "--network-alias", "webalias", dnsArg,
		"busybox", "sh", "-c", "mkdir /www && echo front > /www/f && exec httpd -f -p 80 -h /www")
	webIP := e.inspectf("{{.NetworkSettings.Networks.front.IPAddress}}", "web")
	if ip := netip.MustParseAddr(webIP); !netip.MustParsePrefix(frontNet + ".128/25").Contains(ip) {
		t.Errorf("web's address %s is outside the ip-range", ip)
	}
	out := c.ok("run", "--rm", "--network", "front", dnsArg, "busybox", "sh", "-c",
		"cat /etc/resolv.conf; echo @@; nslookup web; echo @@; nslookup webalias; echo @@; nslookup "+webID[:12]+"; echo @@; nslookup outside.test; echo @@; ping -c1 -W2 web >/dev/null; echo ping=$?")
	s := sections(out)
	if len(s) != 6 {
		t.Fatalf("output:\n%s", out)
	}
	if ns := resolvField(s[0], "nameserver"); !slices.Equal(ns, []string{"127.0.0.11"}) {
		t.Errorf("resolv.conf on a user network:\n%s", s[0])
	}
	for i, name := range []string{"web", "webalias", webID[:12]} {
		if got := lookups(s[1+i]); !slices.Equal(got, []string{webIP}) {
			t.Errorf("nslookup %s = %v, want %s:\n%s", name, got, webIP, s[1+i])
		}
	}
	if got := lookups(s[4]); !slices.Equal(got, []string{"192.0.2.99"}) {
		t.Errorf("nslookup outside.test (forwarded to %s) = %v:\n%s", e.dns, got, s[4])
	}
	if s[5] != "ping=0\n" {
		t.Errorf("ping web: %s", s[5])
	}
	members := strings.TrimSpace(c.ok("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}};{{end}}", "front"))
	if want := fmt.Sprintf("web %s/24;", webIP); members != want {
		t.Errorf("front's containers = %q, want %q", members, want)
	}
	stderr := c.fail(1, "network", "rm", "front")
	if want := "error while removing network: network front has active endpoints"; !strings.Contains(stderr, want) || !strings.Contains(stderr, "web") {
		t.Errorf("rm of a network in use: %s\nwant %q", stderr, want)
	}

	// Isolation: back does not reach front, until web joins back too.
	out = c.ok("run", "--rm", "--network", "back", dnsArg, "busybox", "sh", "-c",
		"ping -c1 -W1 "+webIP+" >/dev/null 2>&1 && echo ping reached || echo ping blocked; timeout 2 wget -qO- http://"+webIP+"/f >/dev/null 2>&1 && echo wget reached || echo wget blocked")
	if out != "ping blocked\nwget blocked\n" {
		t.Errorf("back reached front:\n%s", out)
	}
	c.ok("network", "connect", "--alias", "other", "back", "web")
	backIP := e.inspectf("{{.NetworkSettings.Networks.back.IPAddress}}", "web")
	if out := c.ok("exec", "web", "ip", "-4", "addr"); !strings.Contains(out, webIP+"/24") || !strings.Contains(out, backIP+"/24") {
		t.Errorf("web after connect:\n%s", out)
	}
	out = c.ok("run", "--rm", "--network", "back", dnsArg, "busybox", "sh", "-c", "nslookup other; echo @@; timeout 10 wget -qO- http://web/f")
	if s := sections(out); len(s) != 2 || !slices.Equal(lookups(s[0]), []string{backIP}) || s[1] != "front\n" {
		t.Errorf("back -> web by its alias and name after connect (web's back address %s):\n%s", backIP, out)
	}
	if got := strings.TrimSpace(c.ok("network", "inspect", "-f", "{{range .Containers}}{{.Name}};{{end}}", "back")); got != "web;" {
		t.Errorf("back's containers after connect = %q", got)
	}
	c.ok("network", "disconnect", "back", "web")
	if out := c.ok("exec", "web", "ip", "-4", "addr"); strings.Contains(out, backIP+"/") || !strings.Contains(out, webIP+"/24") {
		t.Errorf("web after disconnect:\n%s", out)
	}
	if got := strings.TrimSpace(c.ok("network", "inspect", "-f", "{{range .Containers}}{{.Name}};{{end}}", "back")); got != "" {
		t.Errorf("back's containers after disconnect = %q", got)
	}

	// A container that leaves its primary network (the default bridge)
	// restarts on the network it has left.
	e.detached("--name", "multi", dnsArg, "busybox", "sleep", "300")
	c.ok("network", "connect", "back", "multi")
	c.ok("network", "disconnect", "bridge", "multi")
	c.ok("restart", "-t", "0", "multi")
	backIP = e.inspectf("{{.NetworkSettings.Networks.back.IPAddress}}", "multi")
	if nets := e.inspectf("{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "multi"); nets != "back" {
		t.Errorf("multi's networks after disconnecting bridge and a restart: %q", nets)
	}
	if out := c.ok("exec", "multi", "ip", "-4", "addr"); !strings.Contains(out, backIP+"/24") || strings.Count(out, "inet ") != 2 {
		t.Errorf("multi's addresses after the restart (back %s):\n%s", backIP, out)
	}
	c.ok("rm", "-f", "multi")

	// A container not started yet shows the networks it will join, and
	// leaving its primary network keeps its network mode, as in Docker
	// (compose reads both: it disconnects and reconnects the created
	// container to set its aliases).
	c.ok("create", "--name", "fresh", "--network", "back", "--network-alias", "fa", dnsArg, "busybox", "sleep", "300")
	t.Cleanup(func() { c.run("", "rm", "-f", "fresh") })
	nets := func(ctr string) string {
		t.Helper()
		return e.inspectf("{{.HostConfig.NetworkMode}}:{{range $k, $v := .NetworkSettings.Networks}} {{$k}}={{$v.Aliases}}{{end}}", ctr)
	}
	if got := nets("fresh"); got != "back: back=[fa]" {
		t.Errorf("created container's networks = %q", got)
	}
	c.ok("network", "disconnect", "back", "fresh")
	if got := nets("fresh"); got != "back:" {
		t.Errorf("networks after disconnecting the created container = %q", got)
	}
	c.ok("network", "connect", "--alias", "fb", "back", "fresh")
	c.ok("start", "fresh")
	if got := nets("fresh"); got != "back: back=[fb]" {
		t.Errorf("networks after reconnecting and starting = %q", got)
	}
	if ip, out := e.inspectf("{{.NetworkSettings.Networks.back.IPAddress}}", "fresh"), c.ok("run", "--rm", "--network", "back", dnsArg, "busybox", "ping", "-c1", "-W2", "fb"); ip == "" || !strings.Contains(out, "("+ip+")") {
		t.Errorf("ping fb (fresh's alias):\n%s", out)
	}
	// Clients before API 1.45 also see the short ID and the hostname
	// among a user-defined network's aliases.
	old := &CLI{t: t, host: c.host, env: append(slices.Clone(c.env), "DOCKER_API_VERSION=1.41")}
	short := e.inspectf("{{.ID}}", "fresh")[:12]
	if got := strings.TrimSpace(old.ok("inspect", "-f", "{{.NetworkSettings.Networks.back.Aliases}}", "fresh")); got != "[fb "+short+"]" {
		t.Errorf("aliases at API 1.41 = %s, want [fb %s]", got, short)
	}
	// A link on a user-defined network is an alias for the linking
	// container alone.
	out = c.ok("run", "--rm", "--network", "back", dnsArg, "--link", "fresh:fresh-link", "busybox", "sh", "-c",
		"ping -c1 -W2 fresh-link >/dev/null; echo link=$?")
	if out != "link=0\n" {
		t.Errorf("a link on a user-defined network:\n%s", out)
	}
	if out := c.ok("run", "--rm", "--network", "back", dnsArg, "busybox", "sh", "-c", "ping -c1 -W1 fresh-link >/dev/null 2>&1; echo link=$?"); out != "link=1\n" {
		t.Errorf("another container's link resolved:\n%s", out)
	}
	// With no network left, it starts with loopback only.
	c.ok("create", "--name", "bare", "--network", "back", "busybox", "sleep", "300")
	t.Cleanup(func() { c.run("", "rm", "-f", "bare") })
	c.ok("network", "disconnect", "back", "bare")
	c.ok("start", "bare")
	if got := nets("bare"); got != "back:" {
		t.Errorf("networks of bare, started with none = %q", got)
	}
	if out := strings.Fields(c.ok("exec", "bare", "ls", "/sys/class/net")); !slices.Equal(out, []string{"lo"}) {
		t.Errorf("bare's interfaces: %q", out)
	}
	// and it can join a network while it runs.
	c.ok("network", "connect", "back", "bare")
	if ip := e.inspectf("{{.NetworkSettings.Networks.back.IPAddress}}", "bare"); ip == "" || !strings.Contains(c.ok("exec", "bare", "ip", "-4", "addr"), ip+"/24") {
		t.Errorf("bare has no address %s on back after connect", ip)
	}
	c.ok("rm", "-f", "fresh", "bare")

	// An internal network has no way out: no default route, and the
	// host's other addresses are unreachable.
	out = c.ok("run", "--rm", "--network", "inner", dnsArg, "busybox", "sh", "-c",
		"ip route; echo @@; ping -c1 -W1 "+e.gateway()+" >/dev/null 2>&1; echo ping=$?")
	if s := sections(out); len(s) != 2 || strings.Contains(s[0], "default") || !strings.Contains(s[0], inner+"/24") || s[1] != "ping=1\n" {
		t.Errorf("internal network:\n%s", out)
	}

	// IPv6: addresses from the ULA subnet, ping6 by address and by name.
	e.detached("--name", "v6a", "--network", "six", dnsArg, "busybox", "sleep", "300")
	v6 := e.inspectf("{{.NetworkSettings.Networks.six.GlobalIPv6Address}}", "v6a")
	if a, err := netip.ParseAddr(v6); err != nil || !netip.MustParsePrefix(six+"/64").Contains(a) {
		t.Fatalf("v6a's IPv6 address %q not in %s/64", v6, six)
	}
	out = c.ok("run", "--rm", "--network", "six", dnsArg, "busybox", "sh", "-c",
		"ping6 -c1 -W2 "+v6+" >/dev/null; echo addr=$?; ping6 -c1 -W2 v6a >/dev/null; echo name=$?")
	if out != "addr=0\nname=0\n" {
		t.Errorf("ping6 on an IPv6 network:\n%s", out)
	}

	// container:<name> shares web's namespace; host sees the host's
	// interfaces; none has only loopback.
	if out := c.ok("run", "--rm", "--network", "container:web", "busybox", "ip", "-4", "addr", "show", "eth0"); !strings.Contains(out, webIP+"/24") {
		t.Errorf("--network container:web:\n%s", out)
	}
	hostname, _ := os.Hostname()
	out = c.ok("run", "--rm", "--network", "host", "busybox", "sh", "-c", "ip link show "+brFront+" >/dev/null; echo link=$?; cat /etc/hostname")
	if out != "link=0\n"+hostname+"\n" {
		t.Errorf("--network host (bridge %s, hostname %s):\n%s", brFront, hostname, out)
	}
	out = c.ok("run", "--rm", "--network", "none", "busybox", "sh", "-c", "ls /sys/class/net")
	if strings.Fields(out)[0] != "lo" || len(strings.Fields(out)) != 1 {
		t.Errorf("--network none interfaces: %q", out)
	}
	// Neither joins another network, in Docker's words.
	e.detached("--name", "lonely", "--network", "none", "busybox", "sleep", "300")
	e.detached("--name", "sharer", "--network", "container:web", "busybox", "sleep", "300")
	for ctr, want := range map[string]string{
		"lonely": "container cannot be connected to multiple networks with one of the networks in private (none) mode",
		"sharer": "container sharing network namespace with another container or host cannot be connected to any other network",
	} {
		if stderr := c.fail(1, "network", "connect", "back", ctr); !strings.Contains(stderr, want) {
			t.Errorf("connect %s: %s\nwant %q", ctr, stderr, want)
		}
	}
	c.ok("rm", "-f", "lonely", "sharer")

	// Prune: by label, then every unused network.
	e.network("spare", "--label", "keep=no")
	if out := c.ok("network", "prune", "-f", "--filter", "label=keep=no"); !strings.Contains(out, "spare") || strings.Contains(out, "back") {
		t.Errorf("prune --filter label=keep=no:\n%s", out)
	}
	out = c.ok("network", "prune", "-f")
	for _, name := range []string{"back", "inner"} {
		if !strings.Contains(out, name) {
			t.Errorf("prune did not remove %s:\n%s", name, out)
		}
	}
	if got := ls("--filter", "type=custom"); got != "front six" {
		t.Errorf("custom networks after prune (front and six are in use) = %q", got)
	}
}

// TestNetworkLiveRestore kills berthd under a container that publishes a
// port on a user-defined network: the port keeps serving while the daemon
// is down and after it comes back, and the container's name resolves
// again from its neighbour (the DNS servers are restarted). A container
// that ended while the daemon was down loses its networking at the
// restart: its port, veth and name.
func TestNetworkLiveRestore(t *testing.T) {
	t.Parallel()
	e := newNetEnv(t)
	c, dnsArg := e.c, "--dns="+e.dns
	brLive := "bl" + randHex(10)
	e.network("live", "--subnet", e.subnet(1)+"/24", "-o", "com.docker.network.bridge.name="+brLive)
	port := freePorts(t, 2)
	e.detached("--name", "web", "--network", "live", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), dnsArg,
		"busybox", "sh", "-c", "mkdir /www && echo live > /www/f && exec httpd -f -p 80 -h /www")
	e.detached("--name", "nb", "--network", "live", dnsArg, "busybox", "sleep", "300")
	e.detached("--name", "gone", "--network", "live", "-p", fmt.Sprintf("127.0.0.1:%d:80", port+1), dnsArg, "busybox", "sleep", "300")
	webIP := e.inspectf("{{.NetworkSettings.Networks.live.IPAddress}}", "web")
	gonePid, err := strconv.Atoi(e.inspectf("{{.State.Pid}}", "gone"))
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/f", port)
	if got, err := httpGet(t, url, 20*time.Second); err != nil || got != "live\n" {
		t.Fatalf("before the kill: %q, %v", got, err)
	}
	if n := len(bridgePorts(t, brLive)); n != 3 {
		t.Fatalf("%d veths on the network's bridge, want 3", n)
	}

	e.d.kill(t)
	if got, err := httpGet(t, url, 5*time.Second); err != nil || got != "live\n" {
		t.Errorf("while berthd is down: %q, %v", got, err)
	}
	if err := syscall.Kill(gonePid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill gone's process: %v", err)
	}
	if !waitGone(gonePid, 10*time.Second) {
		t.Fatal("gone's process outlived SIGKILL")
	}
	d := e.d.restart(t)
	// Before the new daemon stops (cleanups run last first).
	t.Cleanup(func() {
		c.run("", "rm", "-f", "web", "nb", "gone")
		c.run("", "network", "rm", "live")
	})
	if got, err := httpGet(t, url, 5*time.Second); err != nil || got != "live\n" {
		t.Errorf("after the restart: %q, %v", got, err)
	}
	out := c.ok("exec", "nb", "sh", "-c", "nslookup web; echo @@; timeout 10 wget -qO- http://web/f")
	if s := sections(out); len(s) != 2 || !slices.Equal(lookups(s[0]), []string{webIP}) || s[1] != "live\n" {
		t.Errorf("nb -> web after the restart (web is %s):\n%s", webIP, out)
	}
	if running := e.inspectf("{{.State.Running}}", "gone"); running != "false" {
		t.Errorf("gone runs after the restart: %s", running)
	}
	poll(t, "gone's veth removed", func() bool { return len(bridgePorts(t, brLive)) == 2 })
	if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1)); err != nil {
		t.Errorf("gone's host port still held after the restart: %v", err)
	} else {
		l.Close()
	}
	if out := c.ok("exec", "nb", "sh", "-c", "nslookup gone >/dev/null 2>&1 && echo resolves || echo unknown"); out != "unknown\n" {
		t.Errorf("gone's name after the restart: %s", out)
	}
	// The restored daemon still owns the port: a second claim is refused.
	stderr := c.fail(125, "run", "-d", "--name", "clash", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "busybox", "true")
	c.run("", "rm", "-f", "clash")
	if !strings.Contains(stderr, fmt.Sprintf("Bind for 127.0.0.1:%d failed: port is already allocated", port)) {
		t.Errorf("port claimed again after the restart: %s", stderr)
	}
	c.ok("rm", "-f", "web", "nb", "gone")
	c.ok("network", "rm", "live")
	if ents, err := os.ReadDir(filepath.Join(d.ExecRoot, "netns")); err != nil || len(ents) != 0 {
		t.Errorf("namespace files left: %v %v", ents, err)
	}
	if got, err := httpGet(t, url, 0); err == nil {
		t.Errorf("port of a removed container answers: %q", got)
	}
}
