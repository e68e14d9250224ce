// Package log carries a *slog.Logger in a context.Context so that every
// layer logs with the fields (container id, request id, ...) its caller set.
// Libraries only read the logger; mains configure it.
package log

import (
	"context"
	"log/slog"
)

type loggerKey struct{}

// WithLogger returns a copy of ctx that carries l.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// G returns the logger carried by ctx, or slog.Default() if there is none.
func G(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}
