// Package mountopt splits mount(8)-style option words ("ro", "nosuid",
// "rprivate", "size=64m") into what mount(2) takes: flags, propagation
// changes and the filesystem's data string. The runtime, the
// snapshotters and the volume store share this one table.
package mountopt
