package socks

// SOCKS5 wire format (RFC 1928) and username/password sub-negotiation
// (RFC 1929). Decoding is kept apart from I/O policy so it can be fuzzed.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

const (
	socksVersion = 0x05
	authVersion  = 0x01 // RFC 1929 sub-negotiation version

	methodNoAuth       = 0x00
	methodUserPass     = 0x02
	methodNoAcceptable = 0xff

	cmdConnect      = 0x01
	cmdBind         = 0x02
	cmdUDPAssociate = 0x03

	atypIPv4   = 0x01
	atypDomain = 0x03
	atypIPv6   = 0x04
)

// Reply codes (RFC 1928 §6).
const (
	repSucceeded           = 0x00
	repGeneralFailure      = 0x01
	repNotAllowed          = 0x02
	repNetworkUnreachable  = 0x03
	repHostUnreachable     = 0x04
	repConnectionRefused   = 0x05
	repTTLExpired          = 0x06
	repCommandNotSupported = 0x07
	repAddrNotSupported    = 0x08
)

// Decoding errors. errBadAddrType and errBadCommand get their own reply
// codes; anything else closes the connection.
var (
	errBadVersion  = errors.New("socks: not SOCKS version 5")
	errBadAddrType = errors.New("socks: unsupported address type")
	errBadDomain   = errors.New("socks: empty domain name")
	errNoMethods   = errors.New("socks: greeting lists no methods")
)

// destination is a request's target: a hostname (never resolved locally)
// or an IP address, and a port.
type destination struct {
	host string     // set for ATYP DOMAIN that is not an IP literal
	addr netip.Addr // set otherwise
	port uint16
}

func (d destination) String() string {
	if d.host != "" {
		return d.host + ":" + strconv.Itoa(int(d.port))
	}
	return netip.AddrPortFrom(d.addr, d.port).String()
}

// hostKey names the destination host for per-destination isolation.
func (d destination) hostKey() string {
	if d.host != "" {
		return d.host
	}
	return d.addr.String()
}

// readGreeting reads VER NMETHODS METHODS.
func readGreeting(r io.Reader) (methods []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	if hdr[0] != socksVersion {
		return nil, errBadVersion
	}
	if hdr[1] == 0 {
		return nil, errNoMethods
	}
	methods = make([]byte, hdr[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return nil, err
	}
	return methods, nil
}

// readUserPass reads VER ULEN UNAME PLEN PASSWD (RFC 1929).
func readUserPass(r io.Reader) (user, pass string, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", "", err
	}
	if hdr[0] != authVersion {
		return "", "", fmt.Errorf("socks: username/password version %d, want 1", hdr[0])
	}
	u := make([]byte, int(hdr[1])+1) // the name and PLEN
	if _, err := io.ReadFull(r, u); err != nil {
		return "", "", err
	}
	p := make([]byte, u[len(u)-1])
	if _, err := io.ReadFull(r, p); err != nil {
		return "", "", err
	}
	return string(u[:len(u)-1]), string(p), nil
}

// readRequest reads VER CMD RSV ATYP DST.ADDR DST.PORT.
func readRequest(r io.Reader) (cmd byte, dst destination, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, dst, err
	}
	if hdr[0] != socksVersion {
		return 0, dst, errBadVersion
	}
	dst, err = readAddr(r, hdr[3])
	return hdr[1], dst, err
}

// readAddr reads an address of type atyp followed by a port.
func readAddr(r io.Reader, atyp byte) (destination, error) {
	var d destination
	var b []byte
	switch atyp {
	case atypIPv4:
		b = make([]byte, 4+2)
	case atypIPv6:
		b = make([]byte, 16+2)
	case atypDomain:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return d, err
		}
		if l[0] == 0 {
			return d, errBadDomain
		}
		b = make([]byte, int(l[0])+2)
	default:
		return d, errBadAddrType
	}
	if _, err := io.ReadFull(r, b); err != nil {
		return d, err
	}
	d.port = binary.BigEndian.Uint16(b[len(b)-2:])
	raw := b[:len(b)-2]
	switch atyp {
	case atypIPv4:
		d.addr = netip.AddrFrom4([4]byte(raw))
	case atypIPv6:
		d.addr = netip.AddrFrom16([16]byte(raw)).Unmap()
	case atypDomain:
		// Clients such as curl --socks5-hostname send IP literals as
		// names; those need no resolution.
		if a, err := netip.ParseAddr(string(raw)); err == nil && a.Zone() == "" {
			d.addr = a.Unmap()
		} else {
			d.host = string(raw)
		}
	}
	return d, nil
}

// parseUDPHeader splits a UDP ASSOCIATE datagram:
// RSV(2) FRAG(1) ATYP DST.ADDR DST.PORT DATA.
func parseUDPHeader(b []byte) (dst destination, frag byte, payload []byte, err error) {
	if len(b) < 4 {
		return dst, 0, nil, io.ErrUnexpectedEOF
	}
	r := &sliceReader{b: b[4:]}
	dst, err = readAddr(r, b[3])
	return dst, b[2], r.b, err
}

// appendUDPHeader appends RSV FRAG=0 and the address of src.
func appendUDPHeader(b []byte, src netip.AddrPort) []byte {
	return appendAddr(append(b, 0, 0, 0), src)
}

// appendAddr appends ATYP ADDR PORT.
func appendAddr(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr().Unmap()
	switch {
	case a.Is4():
		v := a.As4()
		b = append(append(b, atypIPv4), v[:]...)
	case a.Is6():
		v := a.As16()
		b = append(append(b, atypIPv6), v[:]...)
	default:
		b = append(b, atypIPv4, 0, 0, 0, 0)
	}
	return binary.BigEndian.AppendUint16(b, ap.Port())
}

// reply encodes VER REP RSV BND.
func reply(rep byte, bnd netip.AddrPort) []byte {
	return appendAddr([]byte{socksVersion, rep, 0}, bnd)
}

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}
