//go:build !linux

package tun

// The TUN adapter is Linux-only: it sets up its device, addresses and
// routes with rtnetlink (netlink.go). Elsewhere it compiles, so that the
// rest of the binary (a SOCKS client) builds for darwin and windows, and
// Open fails at start with errLinuxOnly.

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
)

var errLinuxOnly = errors.New(`tun: the TUN adapter is Linux-only (this is ` + runtime.GOOS +
	`); use adapter.name = "socks" (a SOCKS5 port, no root) instead`)

// routeProto marks the routes this adapter installs (netlink.go).
const routeProto = 122

type netlink struct{}

func openNetlink() (*netlink, error) { return nil, errLinuxOnly }

func (nl *netlink) close() error                       { return nil }
func (nl *netlink) linkIndex(string) (int, error)      { return 0, errLinuxOnly }
func (nl *netlink) linkUp(int, int) error              { return errLinuxOnly }
func (nl *netlink) linkDel(string) error               { return errLinuxOnly }
func (nl *netlink) addr(bool, int, netip.Prefix) error { return errLinuxOnly }
func (nl *netlink) routeAdd(route) error               { return errLinuxOnly }
func (nl *netlink) routeDel(route) error               { return errLinuxOnly }
func (nl *netlink) routes(uint8) ([]route, error)      { return nil, errLinuxOnly }
func ignoreGone(err error) error                       { return err }

// route is a route in the main table (netlink.go has the real one).
type route struct {
	Dst         netip.Prefix `json:"dst"`
	Gateway     netip.Addr   `json:"gateway,omitzero"`
	OIF         int          `json:"oif,omitempty"`
	Unreachable bool         `json:"unreachable,omitempty"`
	metric      uint32
	proto       uint8
}

func (r route) String() string { return fmt.Sprintf("%s oif %d", r.Dst, r.OIF) }

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return 2 // AF_INET
	}
	return 10 // AF_INET6 on Linux; unused elsewhere
}
