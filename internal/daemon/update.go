package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"

	api "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/oci"
)

// UpdateContainer changes the resources and restart policy of a container;
// a running container's cgroup is changed at once (through the runtime's
// update command) and the record keeps the new values for later starts.
func (d *Daemon) UpdateContainer(ctx context.Context, ref string, upd api.UpdateConfig) ([]string, error) {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return nil, err
	}
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.c
	hc := *c.HostConfig
	if upd.RestartPolicy.Name != "" {
		if err := api.ValidateRestartPolicy(upd.RestartPolicy); err != nil {
			return nil, fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
		}
		if hc.AutoRemove && !upd.RestartPolicy.IsNone() {
			//lint:ignore ST1005 Docker's wording
			return nil, fmt.Errorf("Cannot update restart policy: AutoRemove is enabled for the container: %w", errdefs.ErrConflict)
		}
		hc.RestartPolicy = upd.RestartPolicy
	}
	mergeResources(&hc.Resources, upd.Resources)
	if hc.Memory > 0 && hc.MemorySwap > 0 && hc.MemorySwap < hc.Memory {
		//lint:ignore ST1005 Docker's wording
		return nil, fmt.Errorf("Minimum memoryswap limit should be larger than memory limit, see usage: %w", errdefs.ErrInvalidArgument)
	}
	if upd.Memory > 0 && upd.MemorySwap == 0 && c.HostConfig.MemorySwap > 0 && c.HostConfig.MemorySwap < upd.Memory {
		hc.MemorySwap = 2 * upd.Memory
	}
	res, err := oci.Resources(&hc.Resources)
	if err != nil {
		return nil, err
	}
	if c.State.Running() && e.shim != nil {
		data, err := json.Marshal(res)
		if err != nil {
			return nil, fmt.Errorf("update container %s: %w", c.ID, err)
		}
		cmd := exec.CommandContext(ctx, d.cfg.RuntimePath, "--root", d.runtimeRoot(), "update", "--resources", "-", c.ID)
		cmd.Stdin = bytes.NewReader(data)
		if out, err := cmd.CombinedOutput(); err != nil {
			//lint:ignore ST1005 Docker's wording
			return nil, fmt.Errorf("Cannot update container %s: %s: %w", c.ID, bytes.TrimSpace(out), errdefs.ErrInvalidArgument)
		}
	}
	c.HostConfig = &hc
	if err := d.save(e); err != nil {
		return nil, err
	}
	d.publishContainer("update", c, nil)
	return nil, nil
}

// mergeResources copies the fields upd sets into r.
func mergeResources(r *api.Resources, upd api.Resources) {
	if upd.BlkioWeight != 0 {
		r.BlkioWeight = upd.BlkioWeight
	}
	if upd.CPUShares != 0 {
		r.CPUShares = upd.CPUShares
	}
	if upd.NanoCPUs != 0 {
		r.NanoCPUs = upd.NanoCPUs
		r.CPUPeriod, r.CPUQuota = 0, 0
	}
	if upd.CPUPeriod != 0 {
		r.CPUPeriod = upd.CPUPeriod
	}
	if upd.CPUQuota != 0 {
		r.CPUQuota = upd.CPUQuota
	}
	if upd.CpusetCpus != "" {
		r.CpusetCpus = upd.CpusetCpus
	}
	if upd.CpusetMems != "" {
		r.CpusetMems = upd.CpusetMems
	}
	if upd.Memory != 0 {
		r.Memory = upd.Memory
	}
	if upd.MemoryReservation != 0 {
		r.MemoryReservation = upd.MemoryReservation
	}
	if upd.MemorySwap != 0 {
		r.MemorySwap = upd.MemorySwap
	}
	if upd.PidsLimit != nil {
		r.PidsLimit = upd.PidsLimit
	}
}
