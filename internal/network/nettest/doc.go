// Package nettest has helpers for the network packages' root tests: network
// namespaces made and removed by the test, running code inside one, and test
// subnets that overlap none of the host's routes. It never touches the
// host's own interfaces, routes or firewall rules.
package nettest
