// Package topdir marks the directories under which berth makes a tree of
// its own per container (state, snapshots, logs) as tops of unrelated
// trees, so that ext4 spreads their subdirectories over its block groups.
//
// ext4 without a journal does not reuse an inode freed in the last minute
// or more; it walks past each such inode, reading its table entry, before
// it finds a usable one. Every container's files are made and removed
// again, and ext4 puts a new directory near its parent, so the freed
// inodes pile up in a few groups and each new one costs a walk over
// thousands (most of berthd's CPU time when 50 containers start at once).
// With FS_TOPDIR_FL (chattr +T) on the parent, the Orlov allocator places
// each new subdirectory in a group with free inodes to spare instead.
package topdir
