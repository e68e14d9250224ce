// Package network gives berthd's containers their networking. A Manager
// owns the networks (the predefined "bridge", "host" and "none", and
// user-defined bridge networks) and, per running container, a sandbox: a
// network namespace bind-mounted at <ExecRoot>/netns/<container id>, one
// endpoint per network it is connected to (a veth pair on the network's
// Linux bridge with an address from the network's IPAM), its published
// ports (nftables DNAT in berth's own table), its /etc/hosts, /etc/hostname
// and /etc/resolv.conf, and, on user-defined networks, an embedded DNS
// server on 127.0.0.11 inside the namespace that resolves the containers
// sharing a network with it.
//
// Lifecycle, as the daemon drives it:
//
//	New      at daemon start: predefined networks, bridges, firewall table
//	Restore  right after New: keep the sandboxes of running containers
//	         (DNS servers, port reservations, nftables rules), tear down
//	         the rest, remove stray veths and namespace files
//	Setup    at container start, before the runtime creates the container
//	Teardown at container stop or removal; idempotent
//	Close    at daemon exit: stops in-process servers, deletes nothing
//
// Networks and sandboxes are persisted as JSON records of the metadata
// store (kinds "networks" and "sandboxes"); the kernel objects are found
// again by name after a restart.
package network

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/network/etchosts"
	"github.com/berth-project/berth/internal/network/firewall"
	"github.com/berth-project/berth/internal/network/ipam"
)

// Names of the predefined networks and of the drivers.
const (
	NameBridge = network.NetworkBridge
	NameHost   = network.NetworkHost
	NameNone   = network.NetworkNone

	DriverBridge = "bridge"
	DriverHost   = "host"
	DriverNull   = "null"

	// DefaultBridgeName is the Linux bridge of the default network.
	DefaultBridgeName = "berth0"
)

// Docker's network option names that berth understands.
const (
	OptBridgeName       = "com.docker.network.bridge.name"
	OptMTU              = "com.docker.network.driver.mtu"
	OptHostBindingIPv4  = "com.docker.network.bridge.host_binding_ipv4"
	OptDefaultBridge    = "com.docker.network.bridge.default_bridge"
	OptEnableICC        = "com.docker.network.bridge.enable_icc"
	OptEnableMasquerade = "com.docker.network.bridge.enable_ip_masquerade"
)

// Record kinds in the metadata store.
const (
	kindNetworks  = "networks"
	kindSandboxes = "sandboxes"
)

// DNSAddr is where the embedded DNS server listens inside a container.
var DNSAddr = netip.MustParseAddr("127.0.0.11")

// Config configures a Manager.
type Config struct {
	// DB persists networks and sandboxes. Required.
	DB *metadata.DB
	// ExecRoot holds the namespace files, <ExecRoot>/netns/<container id>.
	// Required.
	ExecRoot string
	// BridgeName is the default network's Linux bridge; "" means
	// DefaultBridgeName.
	BridgeName string
	// BIP is the default bridge's gateway address with its prefix length,
	// e.g. "172.18.0.1/16" (--bip). "" keeps the address the bridge has or
	// picks a free subnet from DefaultAddressPools.
	BIP string
	// DefaultAddressPools are carved into subnets for networks created
	// without one (--default-address-pool); nil means ipam.DefaultPools.
	DefaultAddressPools []ipam.Pool
	// FirewallTable names berth's nftables table; "" means
	// firewall.DefaultTable.
	FirewallTable string
	// MTU of the default bridge and the default for new networks; 0 means
	// 1500.
	MTU int
	// IPForward turns on IPv4 forwarding host-wide (and IPv6 forwarding
	// once a network has IPv6), as dockerd's --ip-forward does. Outbound
	// traffic needs it: the replies to masqueraded connections arrive on
	// the uplink and are forwarded from there, and the bridges' own
	// forwarding switch covers only the way out. When forwarding was off,
	// berth records that it turned it on and keeps a forward guard in its
	// table (see firewall.SetForwardGuard), as Docker sets the FORWARD
	// policy to drop: the host then forwards only what enters or leaves
	// a bridge.
	IPForward bool
	// HostResolvConf and HostHosts are the host's resolver configuration
	// and hosts file; "" means /etc/resolv.conf and /etc/hosts.
	HostResolvConf string
	HostHosts      string
}

// SandboxRequest asks for a container's network namespace and files.
type SandboxRequest struct {
	// ContainerID is the container's full ID; Name its name (without the
	// leading "/"), which containers on the same user-defined network
	// resolve.
	ContainerID, Name string
	// Hostname and Domainname go into /etc/hostname and /etc/hosts.
	Hostname, Domainname string
	// NetworkMode is "", "default" or "bridge" (the default bridge),
	// "host", "none", or a user-defined network's name or ID. The daemon
	// resolves "container:<id>" itself by reusing that container's
	// Sandbox.
	NetworkMode string
	// Endpoints are NetworkingConfig.EndpointsConfig, keyed by network
	// name or ID: aliases, static addresses (IPAMConfig), MAC address.
	// Networks named here besides NetworkMode are connected too.
	Endpoints map[string]*network.EndpointSettings
	// SkipPrimary leaves out NetworkMode's network (a bridge or a
	// user-defined one), which was disconnected: the container gets its
	// own namespace with the Endpoints' networks only, or loopback alone,
	// and can be connected to networks later.
	SkipPrimary bool
	// PortBindings, PublishAllPorts and ExposedPorts are the container's
	// -p, -P and EXPOSE.
	PortBindings    network.PortMap
	PublishAllPorts bool
	ExposedPorts    network.PortSet
	// DNS, DNSSearch, DNSOptions and ExtraHosts are --dns, --dns-search,
	// --dns-option and --add-host.
	DNS        []netip.Addr
	DNSSearch  []string
	DNSOptions []string
	ExtraHosts []string
	// LinkHosts are /etc/hosts lines for legacy links on the default
	// bridge, after the ExtraHosts.
	LinkHosts []etchosts.Entry
	// Dir is the container's own directory, where hosts, hostname and
	// resolv.conf are written. It must exist.
	Dir string
}

// Sandbox is a container's networking as inspect shows it.
type Sandbox struct {
	// NetNSPath is the namespace the container must join (the OCI spec's
	// network namespace path); "" for host networking.
	NetNSPath string
	// HostsPath, ResolvConfPath and HostnamePath are the files to
	// bind-mount at /etc/hosts, /etc/resolv.conf and /etc/hostname.
	HostsPath, ResolvConfPath, HostnamePath string
	// Networks maps network names to the container's endpoints on them.
	Networks map[string]*network.EndpointSettings
	// Ports are the published ports with the host ports actually bound
	// (random ones resolved); exposed ports that are not published map to
	// nil, as in Docker's inspect.
	Ports network.PortMap
}

// netRecord is a network as persisted.
type netRecord struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Driver      string            `json:"driver"`
	Created     time.Time         `json:"created"`
	EnableIPv4  bool              `json:"enableIPv4"`
	EnableIPv6  bool              `json:"enableIPv6"`
	Internal    bool              `json:"internal,omitempty"`
	Attachable  bool              `json:"attachable,omitempty"`
	Options     map[string]string `json:"options,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	IPAMOptions map[string]string `json:"ipamOptions,omitempty"`
	// Bridge is the Linux bridge of a bridge network.
	Bridge string `json:"bridge,omitempty"`
	MTU    int    `json:"mtu,omitempty"`
	// Subnets hold at most one IPv4 and one IPv6 subnet, IPv4 first.
	Subnets []subnetRecord `json:"subnets,omitempty"`
	// Default marks the default bridge network.
	Default bool `json:"default,omitempty"`
	// HostBinding is the default host address of published ports.
	HostBinding netip.Addr `json:"hostBinding,omitzero"`
}

type subnetRecord struct {
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	IPRange netip.Prefix `json:"ipRange,omitzero"`
	// Aux are addresses kept out of allocation (--aux-address).
	Aux map[string]netip.Addr `json:"aux,omitempty"`
	// User tells the subnet was configured by the user, which static
	// addresses require.
	User bool `json:"user,omitempty"`
}

// predefined reports whether the network is one of bridge, host and none.
func (r *netRecord) predefined() bool {
	return r.Default || r.Driver == DriverHost || r.Driver == DriverNull
}

// userDefined reports whether containers on the network resolve each
// other by name: bridge networks other than the default one.
func (r *netRecord) userDefined() bool { return r.Driver == DriverBridge && !r.Default }

// sandboxRecord is a container's networking as persisted.
type sandboxRecord struct {
	ContainerID    string            `json:"containerID"`
	Name           string            `json:"name,omitempty"`
	Hostname       string            `json:"hostname,omitempty"`
	Domainname     string            `json:"domainname,omitempty"`
	NetNS          string            `json:"netns,omitempty"`
	HostsPath      string            `json:"hostsPath"`
	ResolvConfPath string            `json:"resolvConfPath"`
	HostnamePath   string            `json:"hostnamePath"`
	DNS            []netip.Addr      `json:"dns,omitempty"`
	DNSSearch      []string          `json:"dnsSearch,omitempty"`
	DNSOptions     []string          `json:"dnsOptions,omitempty"`
	ExtraHosts     []string          `json:"extraHosts,omitempty"`
	LinkHosts      []etchosts.Entry  `json:"linkHosts,omitempty"`
	Exposed        []network.Port    `json:"exposed,omitempty"`
	Endpoints      []*endpointRecord `json:"endpoints"`
	// EmbeddedDNS tells resolv.conf points to the embedded server.
	EmbeddedDNS bool `json:"embeddedDNS,omitempty"`
	// NextIf numbers the next interface (eth<NextIf>).
	NextIf int `json:"nextIf"`
}

// endpointRecord is a container's attachment to one network.
type endpointRecord struct {
	ID        string `json:"id"`
	NetworkID string `json:"networkID"`
	// IfName is the interface in the container, HostIf the host end of
	// the veth pair; both empty on host and none.
	IfName string         `json:"ifName,omitempty"`
	HostIf string         `json:"hostIf,omitempty"`
	Addrs  []netip.Prefix `json:"addrs,omitempty"`
	MAC    string         `json:"mac,omitempty"`
	// Gateway marks the endpoint carrying the default route and the
	// published ports.
	Gateway  bool     `json:"gateway,omitempty"`
	Aliases  []string `json:"aliases,omitempty"`
	DNSNames []string `json:"dnsNames,omitempty"`
	// Links are legacy links, "container:alias": this container alone
	// resolves alias to that container on the same network.
	Links      []string                    `json:"links,omitempty"`
	IPAMConfig *network.EndpointIPAMConfig `json:"ipamConfig,omitempty"`
	DriverOpts map[string]string           `json:"driverOpts,omitempty"`
	GwPriority int                         `json:"gwPriority,omitempty"`
	Ports      []portRecord                `json:"ports,omitempty"`
}

// portRecord is one published port: the container port as Docker names it
// and the firewall's mapping.
type portRecord struct {
	Port    network.Port         `json:"port"`
	Mapping firewall.PortMapping `json:"mapping"`
}

// addr returns the endpoint's address of the family (4 or 6).
func (e *endpointRecord) addr(fam int) (netip.Prefix, bool) {
	for _, a := range e.Addrs {
		if (fam == 4) == a.Addr().Is4() {
			return a, true
		}
	}
	return netip.Prefix{}, false
}

// newID returns 64 random hex digits, Docker's ID format.
func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

var (
	validName        = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	validContainerID = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
)

func checkContainerID(id string) error {
	if !validContainerID.MatchString(id) {
		return fmt.Errorf("invalid container id %q: %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}

// isHexPrefix reports whether s could be (a prefix of) an ID.
func isHexPrefix(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}
