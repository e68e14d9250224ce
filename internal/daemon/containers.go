package daemon

import (
	"io"
	"time"

	api "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/container"
)

// This file declares the container verbs the API servers call; the
// implementations live in the files named beside each group.

// CreateContainerOptions is a create request.
type CreateContainerOptions struct {
	// Name is the requested name ("" for a generated one), with or
	// without the leading "/".
	Name       string
	Config     *api.Config
	HostConfig *api.HostConfig
	// Endpoints is NetworkingConfig.EndpointsConfig.
	Endpoints map[string]*network.EndpointSettings
	Platform  *ocispec.Platform
}

// CreateContainerResult is what create answers.
type CreateContainerResult struct {
	ID       string
	Warnings []string
}

// StopOptions tune stop and restart.
type StopOptions struct {
	// Signal overrides the container's stop signal ("" for its own).
	Signal string
	// Timeout is how long to wait before SIGKILL; nil uses the
	// container's StopTimeout, else 10 seconds; negative waits forever.
	Timeout *int
}

// RemoveContainerOptions tune remove.
type RemoveContainerOptions struct {
	// Force kills a running container first.
	Force bool
	// Volumes removes the container's anonymous volumes too.
	Volumes bool
}

// WaitResult is how a waited-for container ended.
type WaitResult struct {
	ExitCode int
	// Error is set when the container could not be started or waited for.
	Error string
}

// ListContainersOptions select containers for list.
type ListContainersOptions struct {
	All     bool
	Limit   int
	Size    bool
	Filters map[string][]string
}

// ContainerView is a consistent copy of a container's record plus what only
// the running daemon knows, for list and inspect.
type ContainerView struct {
	*container.Container
	// ExecIDs are the container's exec processes that still exist.
	ExecIDs []string
	// SizeRw and SizeRootFs are filled when the caller asked for sizes.
	SizeRw, SizeRootFs int64
	// ImageName is the familiar name of the image (Config.Image).
	ImageName string
}

// LogsOptions select a container's log entries.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Since, Until   time.Time
	// Tail is the number of entries from the end; negative for all.
	Tail       int
	Timestamps bool
}

// LogEntry is one log line.
type LogEntry struct {
	Stream string // "stdout" or "stderr"
	Line   []byte
	Time   time.Time
}

// AttachOptions connect a client to a container's streams. The call
// returns when the container's output ended (it exited), the client's
// stdin reached the detach keys, or ctx ends.
type AttachOptions struct {
	// Stdin, if set, is copied to the container's stdin.
	Stdin io.Reader
	// Stdout and Stderr receive the container's output (with a TTY all
	// of it goes to Stdout); nil skips that stream.
	Stdout, Stderr io.Writer
	// Logs replays the log before the live output; Stream attaches to
	// the live streams (without it, only Logs is served).
	Logs, Stream bool
	// DetachKeys override the default ctrl-p,ctrl-q (with a TTY only, as
	// Docker: without one, stdin is copied as it is).
	DetachKeys string
	// Attached, if set, is called once the attach is registered and
	// before any output is written: a client may start the container
	// from then on without missing output.
	Attached func()
}

// ErrDetached is returned by Attach and StartExec when the client typed
// the detach keys.
var ErrDetached = errDetached{}

type errDetached struct{}

func (errDetached) Error() string { return "detached from container" }

// ExecCreateOptions is an exec create request.
type ExecCreateOptions = api.ExecCreateRequest

// ExecStartOptions run a created exec; the streams follow AttachOptions.
type ExecStartOptions struct {
	Detach         bool
	Tty            bool
	ConsoleSize    *[2]uint
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	DetachKeys     string
}

// ExecInfo is an exec for inspect.
type ExecInfo struct {
	ID          string
	ContainerID string
	Running     bool
	ExitCode    *int
	Pid         int
	OpenStdin   bool
	OpenStdout  bool
	OpenStderr  bool
	Tty         bool
	Privileged  bool
	User        string
	WorkingDir  string
	Entrypoint  string
	Arguments   []string
	DetachKeys  string
	CanRemove   bool
}

// StatsSample is one reading of a container's resource usage.
type StatsSample = api.StatsResponse

// CommitContainerOptions tune commit.
type CommitContainerOptions struct {
	Reference string // repo[:tag], "" for an untagged image
	Comment   string
	Author    string
	Changes   []string
	Pause     bool
	Config    *api.Config
}

// PathStat describes a path inside a container, for archive HEAD/GET.
type PathStat = api.PathStat

// ContainerPruneReport is what container prune removed.
type ContainerPruneReport struct {
	Deleted        []string
	SpaceReclaimed uint64
}

// ExtractOptions tune ExtractToContainer (docker cp into a container).
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory or the reverse.
	NoOverwriteDirNonDir bool
	// CopyUIDGID keeps the archive's owners (docker cp -a); otherwise files
	// belong to the container's user (root).
	CopyUIDGID bool
}

// The container verbs, by file:
//
//	CreateContainer(context.Context, CreateContainerOptions) (CreateContainerResult, error)
//	StartContainer(context.Context, string) error
//	StopContainer(context.Context, string, StopOptions) error
//	RestartContainer(context.Context, string, StopOptions) error
//	KillContainer(context.Context, string, string) error
//	PauseContainer(context.Context, string) error
//	UnpauseContainer(context.Context, string) error
//	WaitContainer(context.Context, string, api.WaitCondition) (<-chan WaitResult, error)
//	RemoveContainer(context.Context, string, RemoveContainerOptions) error
//	RenameContainer(context.Context, string, string) error
//	UpdateContainer(context.Context, string, api.UpdateConfig) ([]string, error)
//	Containers(context.Context, ListContainersOptions) ([]ContainerView, error)
//	Container(context.Context, string, bool) (ContainerView, error)
//	ContainerLogs(context.Context, string, LogsOptions, func(LogEntry) error) (tty bool, err error)
//	AttachContainer(context.Context, string, AttachOptions) error
//	ResizeContainer(context.Context, string, uint, uint) error
//
//	exec.go
//	CreateExec(context.Context, string, ExecCreateOptions) (string, error)
//	StartExec(context.Context, string, ExecStartOptions) error
//	ResizeExec(context.Context, string, uint, uint) error
//	InspectExec(context.Context, string) (ExecInfo, error)
//	stats.go
//	ContainerStats(context.Context, string) (StatsSample, error)
//	TopContainer(context.Context, string, string) (api.TopResponse, error)
//	containerfs.go
//	ContainerChanges(context.Context, string) ([]api.FilesystemChange, error)
//	StatContainerPath(context.Context, string, string) (PathStat, error)
//	ContainerArchive(context.Context, string, string) (io.ReadCloser, PathStat, error)
//	ExtractToContainer(context.Context, string, string, io.Reader, ExtractOptions) error
//	ExportContainer(context.Context, string, io.Writer) error
//	CommitContainer(context.Context, string, CommitContainerOptions) (string, error)
//	PruneContainers(context.Context, map[string][]string) (ContainerPruneReport, error)
