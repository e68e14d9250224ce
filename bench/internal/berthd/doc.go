// Package berthd runs the berthd under test of a bench: berth's programs
// built or copied into the bench's work directory, and a berthd with its
// own data root, exec root, socket and default bridge, removed with all
// it left when the bench ends. It is Linux only.
package berthd
