package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/berth-project/berth/internal/errdefs"
)

// Defaults of Config.
const (
	DefaultHost     = "unix:///run/berth/berth.sock"
	DefaultDataRoot = "/var/lib/berth"
	DefaultExecRoot = "/run/berth"
	DefaultGroup    = "berth"
)

// Config is berthd's configuration: its command line flags and the keys of
// its configuration file (daemon.json's names for the same settings).
type Config struct {
	Hosts              []string `json:"hosts,omitempty"`
	DataRoot           string   `json:"data-root,omitempty"`
	ExecRoot           string   `json:"exec-root,omitempty"`
	Group              string   `json:"group,omitempty"`
	LogLevel           string   `json:"log-level,omitempty"`
	LiveRestore        bool     `json:"live-restore"`
	InsecureRegistries []string `json:"insecure-registries,omitempty"`
	RegistryMirrors    []string `json:"registry-mirrors,omitempty"`
	StorageDriver      string   `json:"storage-driver,omitempty"`
	// Bridge names the default bridge network's Linux bridge (default
	// berth0); BIP is its gateway address and prefix ("172.18.0.1/16").
	Bridge string `json:"bridge,omitempty"`
	BIP    string `json:"bip,omitempty"`
	// DefaultAddressPools are where new networks' subnets come from.
	DefaultAddressPools []AddressPool `json:"default-address-pools,omitempty"`
	// IPForward turns on the host's IP forwarding, without which
	// containers on bridges reach nothing outside the host (--ip-forward,
	// on by default, as dockerd's).
	IPForward *bool `json:"ip-forward,omitempty"`
	// MTU is the default bridge's MTU (0: 1500).
	MTU int `json:"mtu,omitempty"`

	// ShimPath, RuntimePath and InitPath are the berth-shim, berth-runtime
	// and berth-init binaries ("" finds them beside berthd, then in PATH).
	ShimPath    string `json:"-"`
	RuntimePath string `json:"-"`
	InitPath    string `json:"-"`
}

// AddressPool is one default-address-pools entry: a base prefix cut into
// subnets of Size bits.
type AddressPool struct {
	Base string `json:"base"`
	Size int    `json:"size"`
}

// FileKeys maps each configuration file key to the flag that sets the same
// setting; a flag given on the command line wins over the file.
var FileKeys = map[string]string{
	"hosts":                 "host",
	"data-root":             "data-root",
	"exec-root":             "exec-root",
	"group":                 "group",
	"log-level":             "log-level",
	"live-restore":          "live-restore",
	"insecure-registries":   "insecure-registry",
	"registry-mirrors":      "registry-mirror",
	"storage-driver":        "storage-driver",
	"bridge":                "bridge",
	"bip":                   "bip",
	"default-address-pools": "default-address-pool",
	"ip-forward":            "ip-forward",
	"mtu":                   "mtu",
}

// LoadConfigFile reads the JSON configuration file at path and returns its
// settings and the keys it set. An unknown key, a value of the wrong type
// or malformed JSON is an ErrInvalidArgument error naming the file.
func LoadConfigFile(path string) (Config, map[string]bool, error) {
	var c Config
	data, err := os.ReadFile(path)
	if err != nil {
		return c, nil, fmt.Errorf("read config file: %w", err)
	}
	fail := func(err error) (Config, map[string]bool, error) {
		return Config{}, nil, fmt.Errorf("config file %s: %w: %w", path, err, errdefs.ErrInvalidArgument)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return fail(err)
	}
	set := map[string]bool{}
	var unknown []string
	for k := range keys {
		if _, ok := FileKeys[k]; !ok {
			unknown = append(unknown, k)
		}
		set[k] = true
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fail(fmt.Errorf("unknown keys %s", strings.Join(unknown, ", ")))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fail(err)
	}
	return c, set, nil
}

// Merge returns c with the settings the file set and no flag overrode
// (flagSet holds the names of the flags given on the command line).
func (c Config) Merge(file Config, fileSet, flagSet map[string]bool) Config {
	for key, flag := range FileKeys {
		if !fileSet[key] || flagSet[flag] {
			continue
		}
		switch key {
		case "hosts":
			c.Hosts = file.Hosts
		case "data-root":
			c.DataRoot = file.DataRoot
		case "exec-root":
			c.ExecRoot = file.ExecRoot
		case "group":
			c.Group = file.Group
		case "log-level":
			c.LogLevel = file.LogLevel
		case "live-restore":
			c.LiveRestore = file.LiveRestore
		case "insecure-registries":
			c.InsecureRegistries = file.InsecureRegistries
		case "registry-mirrors":
			c.RegistryMirrors = file.RegistryMirrors
		case "storage-driver":
			c.StorageDriver = file.StorageDriver
		case "bridge":
			c.Bridge = file.Bridge
		case "bip":
			c.BIP = file.BIP
		case "default-address-pools":
			c.DefaultAddressPools = file.DefaultAddressPools
		case "ip-forward":
			c.IPForward = file.IPForward
		case "mtu":
			c.MTU = file.MTU
		}
	}
	return c
}

// Validate checks the settings that can be checked without touching the
// system.
func (c Config) Validate() error {
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		return err
	}
	switch c.StorageDriver {
	case "", "overlay", "overlay2", "native", "vfs":
	default:
		return fmt.Errorf("unknown storage driver %q (use overlay or native): %w", c.StorageDriver, errdefs.ErrInvalidArgument)
	}
	if c.DataRoot == "" || c.ExecRoot == "" {
		return fmt.Errorf("data root and exec root must be set: %w", errdefs.ErrInvalidArgument)
	}
	for _, h := range c.Hosts {
		if _, _, err := ParseHost(h); err != nil {
			return err
		}
	}
	return nil
}

// ParseLogLevel turns dockerd's level names (debug, info, warn, error,
// fatal) into a slog level; "" is info.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug", "trace":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "fatal", "panic":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("invalid log level %q (use debug, info, warn or error): %w", s, errdefs.ErrInvalidArgument)
}

// ParseHost splits a -H address into its network and address: unix://path
// (or a bare absolute path), tcp://host:port, and fd:// for the sockets
// systemd passes (socket activation).
func ParseHost(h string) (network, addr string, err error) {
	switch {
	case strings.HasPrefix(h, "unix://"):
		addr = strings.TrimPrefix(h, "unix://")
		if addr == "" {
			addr = strings.TrimPrefix(DefaultHost, "unix://")
		}
		return "unix", addr, nil
	case strings.HasPrefix(h, "/"):
		return "unix", h, nil
	case h == "fd://":
		return "fd", "", nil
	case strings.HasPrefix(h, "tcp://"):
		addr = strings.TrimPrefix(h, "tcp://")
		if addr == "" || !strings.Contains(addr, ":") {
			return "", "", fmt.Errorf("invalid host %q: want tcp://host:port: %w", h, errdefs.ErrInvalidArgument)
		}
		return "tcp", addr, nil
	}
	return "", "", fmt.Errorf("invalid host %q: want unix:///path, tcp://host:port or fd://: %w", h, errdefs.ErrInvalidArgument)
}
