package descriptor

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
	"unicode/utf8"
)

// Field types (PROTOCOL.md §2.2). Records appear in strictly increasing
// type order, which makes the encoding canonical and duplicates impossible
// to miss; the signature record is always last.
const (
	typeIdentity   = 0x01
	typeLinkKey    = 0x02
	typeOnionKey   = 0x03
	typeAddrs      = 0x04
	typeFlags      = 0x05
	typeExitPolicy = 0x06
	typePublished  = 0x07
	typeExpires    = 0x08
	// typeParams (optional) carries Addr.Params. It is 0x10, not 0x09, so
	// that a descriptor of an older encoder with an unknown 0x09 field
	// still parses as before.
	typeParams    = 0x10
	typeSignature = 0xFF

	tlvHeader = 3 // type(1) length(2)

	flagExit = 0x01

	familyIPv4 = 4
	familyIPv6 = 6
)

// requiredTypes are the known fields; every one must be present.
var requiredTypes = [...]byte{typeIdentity, typeLinkKey, typeOnionKey, typeAddrs, typeFlags, typeExitPolicy, typePublished, typeExpires}

func isKnown(t byte) bool { return t >= typeIdentity && t <= typeExpires || t == typeParams }

func appendTLV(b []byte, typ byte, v []byte) []byte {
	b = append(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

func validTransport(s string) bool {
	if len(s) == 0 || len(s) > MaxTransportName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func checkAddr(a Addr) error {
	if !validTransport(a.Transport) {
		return malformed("transport name %q: want 1..%d bytes of [a-z0-9-]", a.Transport, MaxTransportName)
	}
	ip := a.AddrPort.Addr()
	switch {
	case !a.AddrPort.IsValid():
		return malformed("invalid address for transport %s", a.Transport)
	case ip.Zone() != "":
		return malformed("address %s has a zone", a.AddrPort)
	case ip.Is4In6():
		return malformed("address %s is IPv4-mapped IPv6; use the IPv4 form", a.AddrPort)
	case a.AddrPort.Port() == 0:
		return malformed("address %s has port 0", a.AddrPort)
	}
	return checkParams(a)
}

func checkParams(a Addr) error {
	if len(a.Params) > MaxTransportParams {
		return malformed("transport parameters of %s are %d bytes, limit %d", a.AddrPort, len(a.Params), MaxTransportParams)
	}
	for i := 0; i < len(a.Params); i++ {
		if c := a.Params[i]; c <= ' ' || c > '~' {
			return malformed("transport parameters of %s: byte %#x at %d; want printable ASCII without spaces", a.AddrPort, c, i)
		}
	}
	return nil
}

// encodeParams is the typeParams value: for each address with parameters,
// in order, index(1) length(2) params(length). Nil when no address has any.
func encodeParams(addrs []Addr) []byte {
	var v []byte
	for i, a := range addrs {
		if a.Params == "" {
			continue
		}
		v = append(v, byte(i))
		v = binary.BigEndian.AppendUint16(v, uint16(len(a.Params)))
		v = append(v, a.Params...)
	}
	return v
}

func (d *Descriptor) decodeParams(v []byte) error {
	last := -1
	for len(v) > 0 {
		if len(v) < 3 {
			return malformed("truncated transport parameters")
		}
		i, n := int(v[0]), int(binary.BigEndian.Uint16(v[1:]))
		if i <= last || i >= len(d.Addrs) {
			return malformed("transport parameters for address %d: out of order or no such address", i)
		}
		if n == 0 || len(v) < 3+n {
			return malformed("transport parameters for address %d: bad length %d", i, n)
		}
		d.Addrs[i].Params = string(v[3 : 3+n])
		if err := checkParams(d.Addrs[i]); err != nil {
			return err
		}
		last, v = i, v[3+n:]
	}
	if last < 0 {
		return malformed("empty transport parameters field")
	}
	return nil
}

func unixSeconds(t time.Time, name string) ([]byte, error) {
	if t.Unix() < 0 {
		return nil, malformed("%s %s is before 1970", name, t)
	}
	return binary.BigEndian.AppendUint64(nil, uint64(t.Unix())), nil
}

// encodeBody validates d and encodes everything before the signature
// record.
func (d *Descriptor) encodeBody() ([]byte, error) {
	if len(d.Identity) != ed25519.PublicKeySize {
		return nil, malformed("identity key is %d bytes", len(d.Identity))
	}
	if d.LinkKey == ([32]byte{}) || d.OnionKey == ([32]byte{}) {
		return nil, malformed("link or onion key is zero")
	}
	if len(d.Addrs) == 0 || len(d.Addrs) > MaxAddrs {
		return nil, malformed("%d addresses, want 1..%d", len(d.Addrs), MaxAddrs)
	}
	if len(d.ExitPolicy) > MaxExitPolicy || !utf8.ValidString(d.ExitPolicy) {
		return nil, malformed("exit policy: want valid UTF-8 of at most %d bytes", MaxExitPolicy)
	}
	if !d.Expires.After(d.Published) {
		return nil, malformed("expires %s is not after published %s", d.Expires, d.Published)
	}
	if err := checkLifetime(d); err != nil {
		return nil, err
	}
	var addrs []byte
	for _, a := range d.Addrs {
		if err := checkAddr(a); err != nil {
			return nil, err
		}
		addrs = append(addrs, byte(len(a.Transport)))
		addrs = append(addrs, a.Transport...)
		if a.AddrPort.Addr().Is4() {
			addrs = append(addrs, familyIPv4)
		} else {
			addrs = append(addrs, familyIPv6)
		}
		addrs = append(addrs, a.AddrPort.Addr().AsSlice()...)
		addrs = binary.BigEndian.AppendUint16(addrs, a.AddrPort.Port())
	}
	pub, err := unixSeconds(d.Published, "published")
	if err != nil {
		return nil, err
	}
	exp, err := unixSeconds(d.Expires, "expires")
	if err != nil {
		return nil, err
	}
	var flags byte
	if d.Exit {
		flags |= flagExit
	}
	known := map[byte][]byte{
		typeIdentity:   d.Identity,
		typeLinkKey:    d.LinkKey[:],
		typeOnionKey:   d.OnionKey[:],
		typeAddrs:      addrs,
		typeFlags:      {flags},
		typeExitPolicy: []byte(d.ExitPolicy),
		typePublished:  pub,
		typeExpires:    exp,
	}
	if p := encodeParams(d.Addrs); p != nil {
		known[typeParams] = p
	}
	b := make([]byte, 0, MaxSize)
	b = append(b, Version)
	prev := -1
	emit := func(t byte, v []byte) error {
		if int(t) <= prev {
			return malformed("unknown field type %d out of order or duplicated", t)
		}
		if len(v) > MaxSize {
			return fmt.Errorf("%w: field %d is %d bytes", ErrTooLarge, t, len(v))
		}
		prev = int(t)
		b = appendTLV(b, t, v)
		return nil
	}
	// Merge known and unknown fields in type order.
	u := d.Unknown
	for t := 1; t < typeSignature; t++ {
		if v, ok := known[byte(t)]; ok {
			if err := emit(byte(t), v); err != nil {
				return nil, err
			}
			continue
		}
		for len(u) > 0 && u[0].Type <= byte(t) {
			if u[0].Type == 0 || isKnown(u[0].Type) {
				return nil, malformed("unknown field has reserved or known type %d", u[0].Type)
			}
			if err := emit(u[0].Type, u[0].Value); err != nil {
				return nil, err
			}
			u = u[1:]
		}
	}
	if len(u) > 0 {
		return nil, malformed("unknown field type %d is reserved or out of order", u[0].Type)
	}
	return b, nil
}

// decode parses the structure of b (no signature or time check) and
// returns the descriptor and the length of the signed prefix.
func decode(b []byte) (*Descriptor, int, error) {
	if len(b) < 1 {
		return nil, 0, malformed("empty")
	}
	if b[0] != Version {
		return nil, 0, malformed("unsupported version %d", b[0])
	}
	d := &Descriptor{}
	seen := 0 // bitmask of known types
	prev := 0
	off := 1
	for {
		if len(b)-off < tlvHeader {
			return nil, 0, malformed("truncated field header at offset %d", off)
		}
		t := b[off]
		n := int(binary.BigEndian.Uint16(b[off+1:]))
		start := off + tlvHeader
		if len(b)-start < n {
			return nil, 0, malformed("field %d at offset %d claims %d bytes, %d left", t, off, n, len(b)-start)
		}
		v := b[start : start+n : start+n]
		if t == 0 {
			return nil, 0, malformed("field type 0 at offset %d", off)
		}
		if int(t) <= prev {
			return nil, 0, malformed("field %d at offset %d duplicated or out of order", t, off)
		}
		prev = int(t)
		if t == typeSignature {
			if n != ed25519.SignatureSize {
				return nil, 0, malformed("signature is %d bytes", n)
			}
			if start+n != len(b) {
				return nil, 0, malformed("%d bytes after the signature", len(b)-start-n)
			}
			d.signature = v
			d.encoded = b
			for _, rt := range requiredTypes {
				if seen&(1<<rt) == 0 {
					return nil, 0, malformed("required field %d missing", rt)
				}
			}
			return d, off, nil
		}
		if isKnown(t) {
			seen |= 1 << t
			if err := d.decodeField(t, v); err != nil {
				return nil, 0, err
			}
		} else {
			d.Unknown = append(d.Unknown, Field{Type: t, Value: v})
		}
		off = start + n
	}
}

func fixedLen(t byte, v []byte, n int) error {
	if len(v) != n {
		return malformed("field %d is %d bytes, want %d", t, len(v), n)
	}
	return nil
}

func (d *Descriptor) decodeField(t byte, v []byte) error {
	switch t {
	case typeIdentity:
		if err := fixedLen(t, v, ed25519.PublicKeySize); err != nil {
			return err
		}
		d.Identity = ed25519.PublicKey(v)
	case typeLinkKey, typeOnionKey:
		if err := fixedLen(t, v, 32); err != nil {
			return err
		}
		k := [32]byte(v)
		if k == ([32]byte{}) {
			return malformed("field %d: zero key", t)
		}
		if t == typeLinkKey {
			d.LinkKey = k
		} else {
			d.OnionKey = k
		}
	case typeAddrs:
		return d.decodeAddrs(v)
	case typeParams:
		return d.decodeParams(v)
	case typeFlags:
		if err := fixedLen(t, v, 1); err != nil {
			return err
		}
		// Other bits are reserved: ignored, but covered by the signature.
		d.Exit = v[0]&flagExit != 0
	case typeExitPolicy:
		if len(v) > MaxExitPolicy || !utf8.Valid(v) {
			return malformed("exit policy: want valid UTF-8 of at most %d bytes", MaxExitPolicy)
		}
		d.ExitPolicy = string(v)
	case typePublished, typeExpires:
		if err := fixedLen(t, v, 8); err != nil {
			return err
		}
		s := binary.BigEndian.Uint64(v)
		if s > 1<<62 {
			return malformed("field %d: time out of range", t)
		}
		tm := time.Unix(int64(s), 0)
		if t == typePublished {
			d.Published = tm
		} else {
			d.Expires = tm
			if !d.Expires.After(d.Published) {
				return malformed("expires is not after published")
			}
		}
	}
	return nil
}

func (d *Descriptor) decodeAddrs(v []byte) error {
	for len(v) > 0 {
		if len(d.Addrs) == MaxAddrs {
			return malformed("more than %d addresses", MaxAddrs)
		}
		tl := int(v[0])
		if len(v) < 1+tl+1 {
			return malformed("truncated address")
		}
		tr := string(v[1 : 1+tl])
		fam := v[1+tl]
		v = v[2+tl:]
		var alen int
		switch fam {
		case familyIPv4:
			alen = 4
		case familyIPv6:
			alen = 16
		default:
			return malformed("address family %d", fam)
		}
		if len(v) < alen+2 {
			return malformed("truncated address")
		}
		ip, _ := netip.AddrFromSlice(v[:alen])
		a := Addr{Transport: tr, AddrPort: netip.AddrPortFrom(ip, binary.BigEndian.Uint16(v[alen:]))}
		if err := checkAddr(a); err != nil {
			return err
		}
		d.Addrs = append(d.Addrs, a)
		v = v[alen+2:]
	}
	if len(d.Addrs) == 0 {
		return malformed("no address")
	}
	return nil
}
