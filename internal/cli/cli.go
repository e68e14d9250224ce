package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/moby/moby/client"
)

// DefaultHost is the socket berthd listens on unless told otherwise.
const DefaultHost = "unix:///run/berth/berth.sock"

// Environment variables read by the client.
const (
	EnvHost   = "BERTH_HOST"
	EnvConfig = "BERTH_CONFIG"
)

// GlobalOptions are the flags every command shares.
type GlobalOptions struct {
	Host      string // -H/--host; empty means $BERTH_HOST, then DefaultHost
	ConfigDir string // --config; empty means $BERTH_CONFIG, then ~/.berth
	LogLevel  string // --log-level: debug, info, warn, error, fatal
	Debug     bool   // -D/--debug
}

// CLI is one invocation of berth: its streams, global options, and the
// lazily made API client and config file.
type CLI struct {
	In  *InStream
	Out *OutStream
	Err *OutStream

	opts    GlobalOptions
	host    string
	client  *client.Client
	config  *configfile.ConfigFile
	version string
	log     *slog.Logger
}

// New returns a CLI on the given streams. It validates the global options
// but does not connect.
func New(in io.ReadCloser, out, errOut io.Writer, opts GlobalOptions, version string) (*CLI, error) {
	c := &CLI{In: NewInStream(in), Out: NewOutStream(out), Err: NewOutStream(errOut), opts: opts, version: version}
	level, err := parseLogLevel(opts.LogLevel, opts.Debug)
	if err != nil {
		return nil, err
	}
	c.log = slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: level}))
	host, err := resolveHost(opts.Host)
	if err != nil {
		return nil, err
	}
	c.host = host
	return c, nil
}

// BuildVersion is the client's version string.
func (c *CLI) BuildVersion() string { return c.version }

// Host is the daemon address the CLI talks to.
func (c *CLI) Host() string { return c.host }

// Logger is the CLI's logger, writing to stderr at --log-level.
func (c *CLI) Logger() *slog.Logger { return c.log }

func parseLogLevel(s string, debug bool) (slog.Level, error) {
	if debug {
		return slog.LevelDebug, nil
	}
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "fatal", "panic":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unable to parse logging level: %s", s)
}

// resolveHost picks the daemon address from the flag, the environment or
// the default, and checks its form.
func resolveHost(flag string) (string, error) {
	host := flag
	if host == "" {
		host = os.Getenv(EnvHost)
	}
	if host == "" {
		return DefaultHost, nil
	}
	if strings.HasPrefix(host, "/") {
		host = "unix://" + host
	}
	if _, err := client.ParseHostURL(host); err != nil {
		return "", fmt.Errorf("invalid host %q: %w", host, err)
	}
	proto, addr, _ := strings.Cut(host, "://")
	switch proto {
	case "unix":
		if addr == "" {
			return "", fmt.Errorf("invalid host %q: no socket path", host)
		}
	case "tcp", "http":
	default:
		return "", fmt.Errorf("invalid host %q: unsupported protocol %q (use unix:// or tcp://)", host, proto)
	}
	return host, nil
}

// Client returns the API client, making it on first use. The API version
// is negotiated with the daemon on the first request.
func (c *CLI) Client() (*client.Client, error) {
	if c.client != nil {
		return c.client, nil
	}
	cl, err := client.New(client.WithHost(c.host), client.WithUserAgent("berth-cli/"+c.version))
	if err != nil {
		return nil, fmt.Errorf("api client for %s: %w", c.host, err)
	}
	c.log.Debug("api client", "host", c.host, "max-api-version", cl.ClientVersion())
	c.client = cl
	return cl, nil
}

// Close releases the API client.
func (c *CLI) Close() error {
	if c.client != nil {
		return c.client.Close()
	}
	return nil
}

// ConfigDir is the directory holding config.json.
func (c *CLI) ConfigDir() string {
	if c.opts.ConfigDir != "" {
		return c.opts.ConfigDir
	}
	if d := os.Getenv(EnvConfig); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "/root"
	}
	return filepath.Join(home, ".berth")
}

// ConfigFile loads config.json (Docker's format) from the config
// directory; a missing file is an empty configuration.
func (c *CLI) ConfigFile() (*configfile.ConfigFile, error) {
	if c.config != nil {
		return c.config, nil
	}
	cf, err := dockerconfig.Load(c.ConfigDir())
	if err != nil {
		return nil, fmt.Errorf("load config from %s: %w", c.ConfigDir(), err)
	}
	c.config = cf
	return cf, nil
}

// configFormat is the --format to use: the flag, else the config.json
// default picked by pick (psFormat, imagesFormat...), else "".
func (c *CLI) configFormat(flag string, pick func(cf *configfile.ConfigFile) string) string {
	if flag != "" {
		return flag
	}
	if cf, err := c.ConfigFile(); err == nil {
		return pick(cf)
	}
	return ""
}

// daemonError turns a connection failure into a message that says which
// socket was tried and how to start the daemon; other errors pass through.
func (c *CLI) daemonError(err error) error {
	if err == nil {
		return nil
	}
	if lostConnection(err) {
		return fmt.Errorf("the connection to berthd at %s was lost: %w", c.host, err)
	}
	if !client.IsErrConnectionFailed(err) {
		return err
	}
	msg := fmt.Sprintf("cannot connect to berthd at %s: is the daemon running?", c.host)
	if path, ok := strings.CutPrefix(c.host, "unix://"); ok {
		switch _, statErr := os.Stat(path); {
		case errors.Is(statErr, os.ErrNotExist):
			msg += fmt.Sprintf("\n(socket %s does not exist)", path)
		case errors.Is(statErr, os.ErrPermission):
			msg += fmt.Sprintf("\n(permission denied on %s: run as root or join the berth group)", path)
		}
	}
	msg += "\nStart it with 'berthd' (as root), or point -H/--host or " + EnvHost + " at the socket of a running berthd"
	return &connError{msg: msg, err: err}
}

// lostConnection says whether err is a connection that ended in the
// middle of a response (the daemon stopped or was killed).
func lostConnection(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

type connError struct {
	msg string
	err error
}

func (e *connError) Error() string { return e.msg }
func (e *connError) Unwrap() error { return e.err }
