package daemon

import (
	"bufio"
	"os"
	"runtime"
	"strings"
	"time"
)

// SystemInfo is what /info reports about the daemon and its host.
type SystemInfo struct {
	ID              string
	Name            string // host name
	Images          int
	Driver          string
	BackingFS       string // the file system of the data root
	NFd             int    // the daemon's open file descriptors
	DataRoot        string
	KernelVersion   string
	OperatingSystem string
	OSVersion       string
	OSType          string
	Architecture    string
	CgroupVersion   string // "1" or "2"
	CgroupDriver    string
	NCPU            int
	MemTotal        int64
	// Cgroup controllers available for limits.
	MemoryLimit, SwapLimit, CPUCfsQuota, CPUShares, CPUSet, PidsLimit bool
	IPv4Forwarding                                                    bool
	LiveRestore                                                       bool
	Debug                                                             bool
	InsecureRegistries                                                []string
	RegistryMirrors                                                   []string
	EventListeners                                                    int
	SystemTime                                                        time.Time
}

// Info collects SystemInfo.
func (d *Daemon) Info() (SystemInfo, error) {
	cfg := d.Config()
	n, err := d.ImageCount()
	if err != nil {
		return SystemInfo{}, err
	}
	host, _ := os.Hostname()
	si := SystemInfo{
		ID:                 d.id,
		Name:               host,
		Images:             n,
		Driver:             d.driver,
		DataRoot:           cfg.DataRoot,
		OSType:             runtime.GOOS,
		NCPU:               runtime.NumCPU(),
		LiveRestore:        cfg.LiveRestore,
		Debug:              strings.EqualFold(cfg.LogLevel, "debug"),
		InsecureRegistries: cfg.InsecureRegistries,
		RegistryMirrors:    cfg.RegistryMirrors,
		EventListeners:     d.events.Listeners(),
		SystemTime:         time.Now(),
	}
	si.OperatingSystem, si.OSVersion = osRelease("/etc/os-release")
	hostInfo(&si, cfg.DataRoot)
	return si, nil
}

// osRelease returns PRETTY_NAME and VERSION_ID of an os-release file.
func osRelease(path string) (name, version string) {
	f, err := os.Open(path)
	if err != nil {
		return "unknown", ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "PRETTY_NAME":
			name = v
		case "VERSION_ID":
			version = v
		}
	}
	if name == "" {
		name = "unknown"
	}
	return name, version
}
