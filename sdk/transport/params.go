package transport

import "net/netip"

// ParamsProvider is implemented by transports whose peers need more than
// an address to reach them: a pluggable transport's bridge arguments
// (obfs4: cert=…,iat-mode=0). The core publishes Params, read after
// Listen, beside each of the transport's addresses in the node's
// descriptor (at most 510 bytes of printable ASCII without spaces;
// empty: none).
type ParamsProvider interface {
	Params() string
}

// PeerParamsSetter is implemented by transports that take their peers'
// published parameters: the core calls SetPeerParams for each address of
// this transport that carries parameters in every descriptor it admits.
type PeerParamsSetter interface {
	SetPeerParams(addr netip.AddrPort, params string) error
}
