//go:build !linux

package daemon

import "runtime"

// hostInfo fills in the architecture; the rest is Linux only.
func hostInfo(si *SystemInfo, dataRoot string) { si.Architecture = runtime.GOARCH }
