// Package host lists and removes what the benches' daemons make on the
// host: processes, cgroups and network links. It is Linux only.
package host
