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

// AdvertiseSetter is implemented by transports that must know the address
// peers are told (the descriptor's), e.g. one listening on 0.0.0.0 or [::]
// whose hello names the advertised address. The core calls it once, after
// Listen and before the first ReadBatch/WriteBatch.
type AdvertiseSetter interface {
	SetAdvertised(addr netip.AddrPort) error
}
