//go:build linux

package main

import "context"

// berthSave is berth's side of save-10-layers. image.Service has no Save
// yet, so it is shown as n/a.
func (b *bench) berthSave(ctx context.Context) (*impl, error) {
	return &impl{name: "berth", unavailable: "image.Service.Save is not written yet"}, nil
}

// berthLoad is berth's side of load-10-layers; see berthSave.
func (b *bench) berthLoad() *impl {
	return &impl{name: "berth", unavailable: "image.Service.Load is not written yet"}
}
