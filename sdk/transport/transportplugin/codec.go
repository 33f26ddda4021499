package transportplugin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Data-channel framing; doc.go has the byte layout.
const (
	countLen  = 2
	headerLen = 16 + 2 + 2 // address, port, length
	// maxPayload is the largest datagram the channel carries (the length
	// field is 16 bits, and a message must hold at least one packet).
	maxPayload = 65535
)

var errMalformed = errors.New("transportplugin: malformed data-channel message")

// encode appends to dst (which must be empty) one message holding as many
// leading packets of pkts as fit in datachan.MaxMessage, and returns the
// message and how many packets it holds (≥ 1 when pkts is non-empty).
func encode(dst []byte, pkts []transport.Packet) ([]byte, int, error) {
	dst = append(dst, 0, 0)
	k := 0
	for _, p := range pkts {
		if p.N < 0 || p.N > maxPayload || p.N > len(p.Buf) {
			return nil, 0, fmt.Errorf("transportplugin: datagram of %d bytes (buffer %d) cannot be sent; the limit is %d", p.N, len(p.Buf), maxPayload)
		}
		if k > 0 && (len(dst)+headerLen+p.N > datachan.MaxMessage || k == 0xffff) {
			break
		}
		a16 := p.Addr.Addr().As16()
		dst = append(dst, a16[:]...)
		dst = binary.BigEndian.AppendUint16(dst, p.Addr.Port())
		dst = binary.BigEndian.AppendUint16(dst, uint16(p.N))
		dst = append(dst, p.Buf[:p.N]...)
		k++
	}
	binary.BigEndian.PutUint16(dst, uint16(k))
	return dst, k, nil
}

// decoder walks one message packet by packet, without copying.
type decoder struct {
	rest []byte // undecoded bytes after the count
	left int    // packets not yet returned
}

func (d *decoder) reset(msg []byte) error {
	d.rest, d.left = nil, 0
	if len(msg) < countLen {
		return errMalformed
	}
	d.left = int(binary.BigEndian.Uint16(msg))
	d.rest = msg[countLen:]
	return nil
}

// next returns the next packet; data aliases the message. After an error
// the rest of the message is discarded.
func (d *decoder) next() (addr netip.AddrPort, data []byte, err error) {
	if d.left == 0 {
		return addr, nil, errMalformed
	}
	if len(d.rest) < headerLen {
		d.left = 0
		return addr, nil, errMalformed
	}
	ip := netip.AddrFrom16([16]byte(d.rest[:16])).Unmap()
	port := binary.BigEndian.Uint16(d.rest[16:])
	n := int(binary.BigEndian.Uint16(d.rest[18:]))
	if len(d.rest) < headerLen+n {
		d.left = 0
		return addr, nil, errMalformed
	}
	data = d.rest[headerLen : headerLen+n]
	d.rest = d.rest[headerLen+n:]
	d.left--
	return netip.AddrPortFrom(ip, port), data, nil
}
