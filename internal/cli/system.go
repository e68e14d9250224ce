package cli

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
)

// VersionOptions are the options of berth version.
type VersionOptions struct {
	Format string
}

// ClientVersion is the client half of berth version.
type ClientVersion struct {
	Platform          struct{ Name string }
	Version           string
	APIVersion        string `json:"ApiVersion"`
	DefaultAPIVersion string `json:"DefaultAPIVersion,omitempty"`
	GoVersion         string
	Os                string
	Arch              string
	Host              string
}

// VersionInfo is what version templates see.
type VersionInfo struct {
	Client *ClientVersion
	Server *client.ServerVersionResult
}

const versionTemplate = `Client:{{if ne .Client.Platform.Name ""}} {{.Client.Platform.Name}}{{end}}
 Version:	{{.Client.Version}}
 API version:	{{.Client.APIVersion}}{{if ne .Client.APIVersion .Client.DefaultAPIVersion}} (downgraded from {{.Client.DefaultAPIVersion}}){{end}}
 Go version:	{{.Client.GoVersion}}
 OS/Arch:	{{.Client.Os}}/{{.Client.Arch}}
 Host:	{{.Client.Host}}
{{- if .Server}}

Server:{{if ne .Server.Platform.Name ""}} {{.Server.Platform.Name}}{{end}}
{{- range $component := .Server.Components}}
 {{$component.Name}}:
  Version:	{{$component.Version}}
  {{- range $key, $value := $component.Details}}
  {{$key}}:	{{$value}}
  {{- end}}
{{- else}}
 Version:	{{.Server.Version}}
 API version:	{{.Server.APIVersion}} (minimum version {{.Server.MinAPIVersion}})
 OS/Arch:	{{.Server.Os}}/{{.Server.Arch}}
{{- end}}
{{- end}}
`

// Version prints the client's and the server's versions. The client part
// is printed even when the daemon cannot be reached, which is an error.
func (c *CLI) Version(ctx context.Context, o VersionOptions) error {
	format := o.Format
	if format == "" || format == FormatTable {
		format = versionTemplate
	} else if format == FormatJSON {
		format = "{{json .}}"
	}
	tmpl, err := parseTemplate(format)
	if err != nil {
		return err
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	v := VersionInfo{Client: &ClientVersion{Platform: struct{ Name string }{"berth"}, Version: c.version,
		DefaultAPIVersion: cl.ClientVersion(), GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH, Host: c.host}}
	sv, serr := cl.ServerVersion(ctx, client.ServerVersionOptions{})
	if serr == nil {
		v.Server = &sv
	}
	v.Client.APIVersion = cl.ClientVersion()
	tw := tabwriter.NewWriter(c.Out, 20, 1, 1, ' ', 0)
	if err := tmpl.Execute(tw, v); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	tw.Write([]byte{'\n'})
	tw.Flush()
	return c.daemonError(serr)
}

// InfoOptions are the options of berth info.
type InfoOptions struct {
	Format string
}

// Info is what info templates see: the daemon's info and the client's.
type Info struct {
	*system.Info
	ClientInfo struct {
		Version string
		Host    string
		Debug   bool
	}
	ServerErrors []string `json:",omitempty"`
}

// Info prints system-wide information.
func (c *CLI) Info(ctx context.Context, o InfoOptions) error {
	if o.Format != "" && o.Format != FormatTable {
		format := o.Format
		if format == FormatJSON {
			format = "{{json .}}"
		}
		if _, err := parseTemplate(format); err != nil {
			return err
		}
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.Info(ctx, client.InfoOptions{})
	if err != nil {
		return c.daemonError(err)
	}
	info := Info{Info: &res.Info}
	info.ClientInfo.Version, info.ClientInfo.Host, info.ClientInfo.Debug = c.version, c.host, c.opts.Debug
	if o.Format != "" && o.Format != FormatTable {
		format := o.Format
		if format == FormatJSON {
			format = "{{json .}}"
		}
		tmpl, _ := parseTemplate(format)
		if err := tmpl.Execute(c.Out, info); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		fmt.Fprintln(c.Out)
		return nil
	}
	printInfo(c.Out, info)
	for _, w := range info.Warnings {
		fmt.Fprintln(c.Err, w)
	}
	return nil
}

func printInfo(w io.Writer, info Info) {
	i := info.Info
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("Client:")
	p(" Version:    %s", info.ClientInfo.Version)
	p(" Host:       %s", info.ClientInfo.Host)
	p("")
	p("Server:")
	p(" Containers: %d", i.Containers)
	p("  Running: %d", i.ContainersRunning)
	p("  Paused: %d", i.ContainersPaused)
	p("  Stopped: %d", i.ContainersStopped)
	p(" Images: %d", i.Images)
	p(" Server Version: %s", i.ServerVersion)
	p(" Storage Driver: %s", i.Driver)
	for _, kv := range i.DriverStatus {
		p("  %s: %s", kv[0], kv[1])
	}
	p(" Logging Driver: %s", i.LoggingDriver)
	p(" Cgroup Driver: %s", i.CgroupDriver)
	p(" Cgroup Version: %s", i.CgroupVersion)
	var volumes, networks []string
	volumes = append(volumes, i.Plugins.Volume...)
	networks = append(networks, i.Plugins.Network...)
	p(" Plugins:")
	p("  Volume: %s", strings.Join(volumes, " "))
	p("  Network: %s", strings.Join(networks, " "))
	p("  Log: %s", strings.Join(i.Plugins.Log, " "))
	p(" Swarm: %s", i.Swarm.LocalNodeState)
	var runtimes []string
	for name := range i.Runtimes {
		runtimes = append(runtimes, name)
	}
	sort.Strings(runtimes)
	p(" Runtimes: %s", strings.Join(runtimes, " "))
	p(" Default Runtime: %s", i.DefaultRuntime)
	p(" Init Binary: %s", i.InitBinary)
	p(" containerd version: %s", i.ContainerdCommit.ID)
	p(" runc version: %s", i.RuncCommit.ID)
	p(" init version: %s", i.InitCommit.ID)
	if len(i.SecurityOptions) > 0 {
		p(" Security Options:")
		for _, o := range i.SecurityOptions {
			p("  %s", o)
		}
	}
	p(" Kernel Version: %s", i.KernelVersion)
	p(" Operating System: %s", i.OperatingSystem)
	p(" OSType: %s", i.OSType)
	p(" Architecture: %s", i.Architecture)
	p(" CPUs: %d", i.NCPU)
	p(" Total Memory: %s", units.BytesSize(float64(i.MemTotal)))
	p(" Name: %s", i.Name)
	p(" ID: %s", i.ID)
	p(" Docker Root Dir: %s", i.DockerRootDir)
	p(" Debug Mode: %v", i.Debug)
	if i.Debug {
		p("  File Descriptors: %d", i.NFd)
		p("  Goroutines: %d", i.NGoroutines)
		p("  System Time: %s", i.SystemTime)
		p("  EventsListeners: %d", i.NEventsListener)
	}
	p(" Experimental: %v", i.ExperimentalBuild)
	if i.RegistryConfig != nil && len(i.RegistryConfig.InsecureRegistryCIDRs) > 0 {
		p(" Insecure Registries:")
		for _, c := range i.RegistryConfig.InsecureRegistryCIDRs {
			p("  %s", c)
		}
	}
	p(" Live Restore Enabled: %v", i.LiveRestoreEnabled)
	p("")
}
