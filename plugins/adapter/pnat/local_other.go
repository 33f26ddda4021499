//go:build !linux

package pnat

import (
	"errors"
	"net/netip"
)

// routeIsLocal has no routing-table query outside Linux; the caller then
// reads the interface addresses afresh at every dial.
func routeIsLocal(netip.Addr) (bool, error) {
	return false, errors.New("pnat: no route lookup on this platform")
}
