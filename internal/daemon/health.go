package daemon

import (
	api "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/container"
)

// initialHealth is the health state of a container at start: "starting"
// when it has a health check, nil when not.
func initialHealth(c *container.Container) *api.Health {
	h := c.Config.Healthcheck
	if h == nil || len(h.Test) == 0 || h.Test[0] == "NONE" {
		return nil
	}
	return &api.Health{Status: api.Starting}
}

// startHealthCheck starts the health checker of a running container;
// e.mu is held.
func (d *Daemon) startHealthCheck(e *ctrEntry) {}

// stopHealthCheck stops it; e.mu is held.
func (d *Daemon) stopHealthCheck(e *ctrEntry) {
	if e.healthCancel != nil {
		e.healthCancel()
		e.healthCancel = nil
	}
}
