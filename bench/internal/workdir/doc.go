// Package workdir prepares and tears down the benches' work directories:
// where data roots go on disk and how whatever was mounted under them is
// taken away. It is Linux only.
package workdir
