package initproc

// Exit codes of berth-init besides the child's own, as a shell uses them.
const (
	// ExitUsage is the exit code for a bad command line.
	ExitUsage = 2
	// ExitCannotExec is the exit code when the command exists but cannot
	// be executed (permission denied, not an executable format, ...).
	ExitCannotExec = 126
	// ExitNotFound is the exit code when the command does not exist.
	ExitNotFound = 127
	// exitSignalBase plus n is the exit code of a child killed by signal n.
	exitSignalBase = 128
)
