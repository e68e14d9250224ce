package daemon

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/volume"
)

// CreateVolume creates a named volume (or returns the existing one of
// that name) and publishes a create event.
func (d *Daemon) CreateVolume(ctx context.Context, req volume.CreateRequest) (volume.Volume, error) {
	v, err := d.vols.Create(ctx, req)
	if err != nil {
		return v, err
	}
	d.publish(Event{Type: "volume", Action: "create", ID: v.Name, Attributes: map[string]string{"driver": v.Driver}})
	return v, nil
}

// Volumes lists volumes selected by filters.
func (d *Daemon) Volumes(ctx context.Context, filters map[string][]string) ([]volume.Volume, error) {
	return d.vols.List(ctx, filters)
}

// Volume returns the volume name, with its usage when size is set.
func (d *Daemon) Volume(ctx context.Context, name string) (volume.Volume, error) {
	return d.vols.Get(ctx, name)
}

// RemoveVolume removes a volume no container uses (force only ignores a
// missing one).
func (d *Daemon) RemoveVolume(ctx context.Context, name string, force bool) error {
	if err := d.vols.Remove(ctx, name, force); err != nil {
		return err
	}
	d.publish(Event{Type: "volume", Action: "destroy", ID: name, Attributes: map[string]string{"driver": "local"}})
	return nil
}

// PruneVolumes removes unused volumes (anonymous ones unless filters say
// all=true) and publishes a prune event.
func (d *Daemon) PruneVolumes(ctx context.Context, filters map[string][]string) ([]string, uint64, error) {
	deleted, space, err := d.vols.Prune(ctx, filters)
	if err != nil {
		return nil, 0, err
	}
	for _, name := range deleted {
		d.publish(Event{Type: "volume", Action: "destroy", ID: name, Attributes: map[string]string{"driver": "local"}})
	}
	d.publish(Event{Type: "volume", Action: "prune", Attributes: map[string]string{"reclaimed": fmt.Sprint(space)}})
	return deleted, space, nil
}

// VolumeUsage returns the size of each volume and how many containers use
// it, for system df.
func (d *Daemon) VolumeUsage(ctx context.Context) (map[string]int64, map[string]int, error) {
	sizes, err := d.vols.Usage(ctx)
	if err != nil {
		return nil, nil, err
	}
	refs := map[string]int{}
	for name := range sizes {
		users, err := d.vols.Users(ctx, name)
		if err == nil {
			refs[name] = len(users)
		}
	}
	return sizes, refs, nil
}
