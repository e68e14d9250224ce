package build

import (
	"context"
	"strings"

	"github.com/berth-project/berth/internal/snapshot"
)

// pruneCacheMounts removes the snapshots of RUN --mount=type=cache
// directories that no build of b uses now and returns the bytes they
// held.
func (b *Builder) pruneCacheMounts(ctx context.Context) (int64, error) {
	var keys []string
	err := b.cfg.Snapshotter.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		if info.Kind == snapshot.KindActive && strings.HasPrefix(info.Name, cacheMountPrefix) && !b.cacheInUse(info.Name) {
			keys = append(keys, info.Name)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var total int64
	for _, k := range keys {
		if u, err := b.cfg.Snapshotter.Usage(ctx, k); err == nil {
			total += u.Size
		}
		if err := b.cfg.Snapshotter.Remove(ctx, k); err != nil {
			return total, err
		}
	}
	return total, nil
}

// useCache marks the cache snapshot key in use until the returned func
// is called.
func (b *Builder) useCache(key string) func() {
	b.cacheMu.Lock()
	defer b.cacheMu.Unlock()
	if b.cacheUsers == nil {
		b.cacheUsers = map[string]int{}
	}
	b.cacheUsers[key]++
	return func() {
		b.cacheMu.Lock()
		defer b.cacheMu.Unlock()
		if b.cacheUsers[key]--; b.cacheUsers[key] == 0 {
			delete(b.cacheUsers, key)
		}
	}
}

func (b *Builder) cacheInUse(key string) bool {
	b.cacheMu.Lock()
	defer b.cacheMu.Unlock()
	return b.cacheUsers[key] > 0
}
