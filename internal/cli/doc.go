// Package cli implements the berth command line client: one options struct
// and one function per command, talking to berthd through the Docker Engine
// API with the official Go client. It holds no engine logic and does not
// import cobra; internal/cli/commands builds the command tree on top of it.
package cli
