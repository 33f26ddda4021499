// Package adapter defines IP adapters: where IP packets enter a Tarzan
// tunnel (a client's TUN device or SOCKS5 port) and where they leave it (an
// exit's pseudonymous NAT).
//
// The interface mirrors wireguard-go's tun.Device: batch-first, with
// caller-owned buffers and headroom so the core can add onion layers in
// place without copying.
//
// Buffer ownership:
//   - ReadPackets: the caller owns bufs; the adapter writes packet i into
//     bufs[i][offset:], sets sizes[i], and keeps no reference on return.
//   - WritePackets: the caller owns bufs; each packet is bufs[i][offset:];
//     the adapter must be done with them when WritePackets returns.
//
// The glue that runs an Adapter in a child process lives in
// sdk/adapter/adapterplugin; an in-memory fake in adaptertest.
package adapter

import (
	"errors"
	"net/netip"
)

// ErrClosed is returned after Close.
var ErrClosed = errors.New("adapter: closed")

// Role says which end of a tunnel an adapter serves.
type Role string

const (
	RoleClient Role = "client" // packets from local applications into tunnels
	RoleExit   Role = "exit"   // packets from tunnels out to the Internet
)

// Config is what the core tells an adapter when it opens it.
type Config struct {
	MTU       int               // inner MTU of a tunnel (>= 1280)
	Addresses []netip.Prefix    // addresses the adapter owns (client side)
	Exclude   []netip.Prefix    // destinations that must never enter the adapter (the node's own mimic links)
	Options   map[string]string // the [adapter.options] table from node.toml
}

// Adapter moves whole IP packets (v4 or v6) between the core and the world.
type Adapter interface {
	Name() string
	Role() Role
	Open(cfg Config) error
	// ReadPackets blocks until at least one packet is available and
	// returns how many it wrote.
	ReadPackets(bufs [][]byte, sizes []int, offset int) (n int, err error)
	// WritePackets delivers packets and returns how many it accepted.
	WritePackets(bufs [][]byte, offset int) (n int, err error)
	Close() error
}

// Factory creates an adapter from its options.
type Factory func(options map[string]string) (Adapter, error)
