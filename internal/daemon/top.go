package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	api "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/cgroups"
	"github.com/berth-project/berth/internal/errdefs"
)

// TopContainer lists the processes of the running container ref the way
// Docker does: it runs the host's ps with psArgs (default "-ef") and keeps
// the rows whose PID is in the container's cgroup. The ps columns are
// ps's own; a ps that fails gives its first line of stderr.
func (d *Daemon) TopContainer(ctx context.Context, ref, psArgs string) (api.TopResponse, error) {
	if psArgs == "" {
		psArgs = "-ef"
	}
	if err := checkPSArgs(psArgs); err != nil {
		return api.TopResponse{}, err
	}
	e, err := d.ctrs.get(ref)
	if err != nil {
		return api.TopResponse{}, err
	}
	e.mu.Lock()
	c := e.c
	id := c.ID
	var stateErr error
	switch {
	case c.State.Status == api.StateRestarting:
		stateErr = fmt.Errorf("container %s is restarting, wait until the container is running: %w", id, errdefs.ErrConflict)
	case !c.State.Running() || e.shim == nil:
		stateErr = fmt.Errorf("container %s is not running: %w", id, errdefs.ErrConflict)
	}
	e.mu.Unlock()
	if stateErr != nil {
		return api.TopResponse{}, stateErr
	}
	m, err := cgroups.New(cgroupsPath(id), id)
	if err != nil {
		return api.TopResponse{}, fmt.Errorf("top %s: %w", id, err)
	}
	pids, err := m.Pids()
	if err != nil {
		return api.TopResponse{}, fmt.Errorf("top %s: list processes: %w", id, err)
	}
	args := asciiFields(psArgs)
	out, err := runPS(ctx, append(args, pidsArg(pids)))
	if err != nil {
		// Some options (f, for one) do not mix with -q: list everything.
		if out, err = runPS(ctx, args); err != nil {
			return api.TopResponse{}, err
		}
	}
	top, err := parsePS(out, pids)
	if err != nil {
		return api.TopResponse{}, err
	}
	e.mu.Lock()
	d.publishContainer("top", e.c, nil)
	e.mu.Unlock()
	return top, nil
}

// psRenamesPID matches a ps column renamed to a title starting with PID
// ("-o user=PID"): only the pid column may be, or the PID column is lost.
var psRenamesPID = regexp.MustCompile(`\s+(\S*)=\s*(PID\S*)`)

// checkPSArgs refuses ps arguments that would fake the PID column.
func checkPSArgs(psArgs string) error {
	for _, m := range psRenamesPID.FindAllStringSubmatch(psArgs, -1) {
		if m[1] != "pid" {
			return fmt.Errorf("specifying \"%s=%s\" is not allowed: %w", m[1], m[2], errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// asciiFields splits s at ASCII white space only, so that other white
// space stays inside an argument.
func asciiFields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r'
	})
}

// pidsArg is ps's -q option selecting pids ("-q1,2,3").
func pidsArg(pids []int) string {
	var b strings.Builder
	b.WriteString("-q")
	for i, p := range pids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(p))
	}
	return b.String()
}

// runPS runs the host's ps; its error is ps's first line of stderr.
func runPS(ctx context.Context, args []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ps", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil {
		return out, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if line, _, _ := strings.Cut(stderr.String(), "\n"); line != "" {
			err = errors.New(line)
		}
	}
	return nil, fmt.Errorf("ps: %w", err)
}

// parsePS keeps the rows of ps output whose PID column is one of pids.
// Rows with "-" as PID (threads, with ps's m option) belong to the
// process row above them. The last column (the command) keeps its
// spaces.
func parsePS(out []byte, pids []int) (api.TopResponse, error) {
	lines := strings.Split(string(out), "\n")
	top := api.TopResponse{Titles: asciiFields(lines[0]), Processes: [][]string{}}
	pidCol := slices.Index(top.Titles, "PID")
	if pidCol < 0 {
		//lint:ignore ST1005 Docker's wording
		return api.TopResponse{}, errors.New("Couldn't find PID field in ps output")
	}
	last := len(top.Titles) - 1
	add := func(fields []string) {
		row := slices.Clone(fields[:last])
		row = append(row, strings.Join(fields[last:], " "))
		top.Processes = append(top.Processes, row)
	}
	inContainer := false
	for _, line := range lines[1:] {
		fields := asciiFields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) < len(top.Titles) {
			inContainer = false
			continue
		}
		if fields[pidCol] == "-" {
			if inContainer {
				add(fields)
			}
			continue
		}
		pid, err := strconv.Atoi(fields[pidCol])
		if err != nil {
			//lint:ignore ST1005 Docker's wording
			return api.TopResponse{}, fmt.Errorf("Unexpected pid '%s': %s", fields[pidCol], err)
		}
		inContainer = slices.Contains(pids, pid)
		if inContainer {
			add(fields)
		}
	}
	return top, nil
}
