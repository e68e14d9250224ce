package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// validIDChar reports whether c may appear in a container id: letters,
// digits and _ + - . (runc's rule, without a regexp to compile at start).
func validIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '+' || c == '-' || c == '.'
}

// ValidateID rejects ids that cannot name a state directory safely.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("container id cannot be empty: %w", errdefs.ErrInvalidArgument)
	}
	valid := len(id) <= 1024 && id != "." && id != ".."
	for i := 0; i < len(id) && valid; i++ {
		valid = validIDChar(id[i])
	}
	if !valid {
		return fmt.Errorf("invalid container id %q (allowed: letters, digits, _ + - .): %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}

// LoadSpec reads and validates bundle/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	data, err := readConfig(bundle)
	if err != nil {
		return nil, err
	}
	return parseConfig(bundle, data)
}

// readConfig reads bundle/config.json.
func readConfig(bundle string) ([]byte, error) {
	p := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("config.json not found in bundle %s: %w", bundle, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return data, nil
}

// parseConfig decodes and validates the config.json of bundle.
func parseConfig(bundle string, data []byte) (*specs.Spec, error) {
	p := filepath.Join(bundle, "config.json")
	spec, err := decodeSpec(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w: %w", p, err, errdefs.ErrInvalidArgument)
	}
	if err := ValidateSpec(spec); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", p, err)
	}
	return spec, nil
}

// specFile is specs.Spec with the other platforms' sections kept raw.
// Decoding a type makes encoding/json build its tables for every type the
// type can reach, and about half of those the spec can reach are in these
// sections: in the runtime, which decodes nothing else before, that is
// about 0.4 ms of the start of every container. They are decoded only
// when a config has them.
type specFile struct {
	Version     string            `json:"ociVersion"`
	Process     *specs.Process    `json:"process,omitempty"`
	Root        *specs.Root       `json:"root,omitempty"`
	Hostname    string            `json:"hostname,omitempty"`
	Domainname  string            `json:"domainname,omitempty"`
	Mounts      []specs.Mount     `json:"mounts,omitempty"`
	Hooks       *specs.Hooks      `json:"hooks,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Linux       *specs.Linux      `json:"linux,omitempty"`
	Solaris     json.RawMessage   `json:"solaris,omitempty"`
	Windows     json.RawMessage   `json:"windows,omitempty"`
	VM          json.RawMessage   `json:"vm,omitempty"`
	ZOS         json.RawMessage   `json:"zos,omitempty"`
	FreeBSD     json.RawMessage   `json:"freebsd,omitempty"`
}

// decodeSpec decodes a config.json as json.Unmarshal into a specs.Spec
// would, through specFile. It uses the JSON v2 implementation in its v1
// mode (same names, same rules): encoding/json builds its decoding tables
// and, for every field, its encoding tables on first use, which is most
// of a decode in a process that decodes one spec (1.2 ms against 0.45 ms
// for Docker's spec with its seccomp profile).
func decodeSpec(data []byte) (*specs.Spec, error) {
	var f specFile
	if err := jsonv1.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	return f.spec()
}

// toSpecFile is the specFile that encodes as s does.
func toSpecFile(s *specs.Spec) (*specFile, error) {
	f := &specFile{
		Version: s.Version, Process: s.Process, Root: s.Root, Hostname: s.Hostname, Domainname: s.Domainname,
		Mounts: s.Mounts, Hooks: s.Hooks, Annotations: s.Annotations, Linux: s.Linux,
	}
	for _, o := range []struct {
		src any
		nil bool
		dst *json.RawMessage
	}{
		{s.Solaris, s.Solaris == nil, &f.Solaris}, {s.Windows, s.Windows == nil, &f.Windows}, {s.VM, s.VM == nil, &f.VM},
		{s.ZOS, s.ZOS == nil, &f.ZOS}, {s.FreeBSD, s.FreeBSD == nil, &f.FreeBSD},
	} {
		if o.nil {
			continue
		}
		raw, err := jsonv1.Marshal(o.src)
		if err != nil {
			return nil, err
		}
		*o.dst = raw
	}
	return f, nil
}

// spec is the specs.Spec that f decodes to.
func (f *specFile) spec() (*specs.Spec, error) {
	spec := &specs.Spec{
		Version: f.Version, Process: f.Process, Root: f.Root, Hostname: f.Hostname, Domainname: f.Domainname,
		Mounts: f.Mounts, Hooks: f.Hooks, Annotations: f.Annotations, Linux: f.Linux,
	}
	for _, o := range []struct {
		raw json.RawMessage
		dst any
	}{{f.Solaris, &spec.Solaris}, {f.Windows, &spec.Windows}, {f.VM, &spec.VM}, {f.ZOS, &spec.ZOS}, {f.FreeBSD, &spec.FreeBSD}} {
		if len(o.raw) == 0 {
			continue
		}
		if err := jsonv1.Unmarshal(o.raw, o.dst); err != nil {
			return nil, err
		}
	}
	return spec, nil
}

// peekCgroupsPath reads linux.cgroupsPath from a config.json without
// decoding it into a spec, following json.Unmarshal: keys match
// case-insensitively and the last one wins. ok is false if the data is not
// a JSON object; the caller must still check the decoded spec's value.
func peekCgroupsPath(data []byte) (path string, ok bool) {
	dec := jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	enter := func() bool {
		t, err := dec.ReadToken()
		return err == nil && t.Kind() == '{'
	}
	// keys calls value for each key of the object just entered, which
	// must read the key's value, and then reads the object's end.
	keys := func(value func(key string) bool) bool {
		for dec.PeekKind() == '"' {
			key, err := dec.ReadToken()
			if err != nil || !value(key.String()) {
				return false
			}
		}
		_, err := dec.ReadToken()
		return err == nil
	}
	cgroupsPath := func(key string) bool {
		if !strings.EqualFold(key, "cgroupsPath") {
			return dec.SkipValue() == nil
		}
		v, err := dec.ReadToken()
		switch {
		case err != nil:
			return false
		case v.Kind() == '"':
			path = v.String()
		case v.Kind() != 'n':
			return false
		}
		return true
	}
	ok = enter() && keys(func(key string) bool {
		if !strings.EqualFold(key, "linux") {
			return dec.SkipValue() == nil
		}
		// null or not an object: the spec is refused anyway.
		return enter() && keys(cgroupsPath)
	})
	if !ok {
		return "", false
	}
	return path, true
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

var knownNamespaces = map[specs.LinuxNamespaceType]bool{
	specs.PIDNamespace: true, specs.NetworkNamespace: true, specs.MountNamespace: true,
	specs.IPCNamespace: true, specs.UTSNamespace: true, specs.UserNamespace: true,
	specs.CgroupNamespace: true, specs.TimeNamespace: true,
}

// ValidateSpec checks what the runtime needs before it creates anything.
func ValidateSpec(s *specs.Spec) error {
	if s.Version == "" {
		return invalid("ociVersion is missing")
	}
	if !strings.HasPrefix(s.Version, "1.") {
		return invalid("unsupported ociVersion %q (want 1.x)", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		return invalid("root.path is missing")
	}
	if s.Process == nil {
		return invalid("process is missing")
	}
	if err := validateProcess(s.Process); err != nil {
		return err
	}
	if s.Linux == nil {
		return invalid("linux section is missing")
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		if !knownNamespaces[ns.Type] {
			return invalid("unknown namespace type %q", ns.Type)
		}
		if seen[ns.Type] {
			return invalid("namespace %q is listed twice", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" && !filepath.IsAbs(ns.Path) {
			return invalid("namespace %s path %q is not absolute", ns.Type, ns.Path)
		}
	}
	if !seen[specs.MountNamespace] {
		return invalid("a mount namespace is required")
	}
	if s.Hostname != "" && !newNamespace(s, specs.UTSNamespace) {
		return invalid("hostname requires a private UTS namespace")
	}
	if s.Domainname != "" && !newNamespace(s, specs.UTSNamespace) {
		return invalid("domainname requires a private UTS namespace")
	}
	if (len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0) && !seen[specs.UserNamespace] {
		return invalid("uid/gid mappings require a user namespace")
	}
	if newNamespace(s, specs.UserNamespace) && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0) {
		return invalid("a new user namespace needs uidMappings and gidMappings")
	}
	if len(s.Linux.TimeOffsets) > 0 && !newNamespace(s, specs.TimeNamespace) {
		return invalid("timeOffsets require a new time namespace")
	}
	for k := range s.Linux.Sysctl {
		if err := validateSysctl(s, k); err != nil {
			return err
		}
	}
	for i, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return invalid("mounts[%d]: destination %q is not absolute", i, m.Destination)
		}
	}
	if s.Linux.RootfsPropagation != "" {
		switch s.Linux.RootfsPropagation {
		case "shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable":
		default:
			return invalid("rootfsPropagation %q is not valid", s.Linux.RootfsPropagation)
		}
	}
	for i, d := range s.Linux.Devices {
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			return invalid("devices[%d] (%s): unknown type %q", i, d.Path, d.Type)
		}
	}
	if s.Hooks != nil {
		for kind, list := range map[string][]specs.Hook{
			"prestart": s.Hooks.Prestart, "createRuntime": s.Hooks.CreateRuntime, "createContainer": s.Hooks.CreateContainer,
			"startContainer": s.Hooks.StartContainer, "poststart": s.Hooks.Poststart, "poststop": s.Hooks.Poststop,
		} {
			for i, h := range list {
				if !filepath.IsAbs(h.Path) {
					return invalid("hooks.%s[%d]: path %q is not absolute", kind, i, h.Path)
				}
				if h.Timeout != nil && *h.Timeout <= 0 {
					return invalid("hooks.%s[%d]: timeout must be positive", kind, i)
				}
			}
		}
	}
	return nil
}

func validateProcess(p *specs.Process) error {
	if len(p.Args) == 0 && p.CommandLine == "" {
		return invalid("process.args must not be empty")
	}
	if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
		return invalid("process.cwd %q must be an absolute path", p.Cwd)
	}
	if c := p.Capabilities; c != nil {
		for _, set := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
			for _, name := range set {
				if !knownCapability(name) {
					return invalid("unknown capability %q", name)
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, r := range p.Rlimits {
		if !knownRlimit(r.Type) {
			return invalid("unknown rlimit type %q", r.Type)
		}
		if seen[r.Type] {
			return invalid("rlimit %s is listed twice", r.Type)
		}
		seen[r.Type] = true
		if r.Soft > r.Hard {
			return invalid("rlimit %s: soft limit %d is above hard limit %d", r.Type, r.Soft, r.Hard)
		}
	}
	for _, e := range p.Env {
		if !strings.Contains(e, "=") {
			return invalid("process.env entry %q is not KEY=value", e)
		}
	}
	return nil
}

func newNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return ns.Path == ""
		}
	}
	return false
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

// validateSysctl refuses sysctls that would change the host, as runc does:
// only namespaced ones, and only when the container has that namespace.
func validateSysctl(s *specs.Spec, key string) error {
	switch {
	case strings.HasPrefix(key, "net."):
		if !hasNamespace(s, specs.NetworkNamespace) {
			return invalid("sysctl %q needs a network namespace", key)
		}
	case strings.HasPrefix(key, "fs.mqueue.") || key == "kernel.msgmax" || key == "kernel.msgmnb" || key == "kernel.msgmni" ||
		key == "kernel.sem" || key == "kernel.shmall" || key == "kernel.shmmax" || key == "kernel.shmmni" || key == "kernel.shm_rmid_forced":
		if !hasNamespace(s, specs.IPCNamespace) {
			return invalid("sysctl %q needs an IPC namespace", key)
		}
	case key == "kernel.hostname" || key == "kernel.domainname":
		return invalid("sysctl %q is not allowed: use the spec's hostname/domainname", key)
	default:
		return invalid("sysctl %q is not namespaced and would change the host", key)
	}
	if strings.Contains(key, "..") || strings.Contains(key, "/") {
		return invalid("sysctl %q is not a valid key", key)
	}
	return nil
}
