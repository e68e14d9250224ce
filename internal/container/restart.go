package container

import (
	"time"

	api "github.com/moby/moby/api/types/container"
)

// ShouldRestart reports whether a container that exited with exitCode is
// restarted by its policy: "always" and "unless-stopped" unless a user
// stopped it, "on-failure" for a non-zero exit while under its maximum
// retry count (0: no maximum).
func ShouldRestart(p api.RestartPolicy, exitCode, restartCount int, manuallyStopped bool) bool {
	if manuallyStopped {
		return false
	}
	switch p.Name {
	case api.RestartPolicyAlways, api.RestartPolicyUnlessStopped:
		return true
	case api.RestartPolicyOnFailure:
		return exitCode != 0 && (p.MaximumRetryCount == 0 || restartCount < p.MaximumRetryCount)
	}
	return false
}

// Docker's restart back-off: the first restart waits 100ms, each next one
// twice as long up to a minute; a run of at least 10 seconds resets it.
const (
	backoffStart = 100 * time.Millisecond
	backoffMax   = time.Minute
	backoffReset = 10 * time.Second
)

// Backoff computes the delays between restarts. The zero value is ready.
type Backoff struct {
	delay time.Duration
}

// Next returns the delay before the next restart of a container whose
// last run lasted ranFor.
func (b *Backoff) Next(ranFor time.Duration) time.Duration {
	if b.delay == 0 || ranFor >= backoffReset {
		b.delay = backoffStart
		return b.delay
	}
	b.delay *= 2
	if b.delay > backoffMax {
		b.delay = backoffMax
	}
	return b.delay
}

// Reset forgets past restarts.
func (b *Backoff) Reset() { b.delay = 0 }
