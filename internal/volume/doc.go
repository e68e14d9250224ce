// Package volume keeps berthd's named volumes (the "local" driver) and turns
// a container's -v, --mount, --volumes-from and image VOLUME entries into
// the list of mounts the container is created with.
//
// A volume lives in <root>/<name>/_data and has a JSON record in metadata
// (kind "volumes") saying its labels, driver options, the containers that
// use it and whether its first copy-up is done. The record is the truth:
// it is written before the directories are made and deleted before they
// are removed, and New repairs whatever a crash left between the two.
//
// The life of a container's volumes, as the daemon drives it:
//
//	create  Resolve    parse and validate, create named and anonymous
//	                   volumes, record the container as a user
//	start   Mount      mount volumes made with driver options (type,
//	                   device, o), copy the image's content into new empty
//	                   volumes; then SpecMounts for the OCI spec
//	stop    Unmount    drop the container's driver-option mounts
//	rm      Release    drop the container as a user; with -v remove its
//	                   anonymous volumes no other container uses
//
// Volume mounts of a container carry, besides Docker's inspect fields, a
// few words in container.Mount.Options that only this package reads (see
// OptNoCopy and friends); tmpfs mounts carry their tmpfs options there.
package volume
