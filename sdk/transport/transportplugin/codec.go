package transportplugin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
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

// gatherMax is the most packets one gathered message holds; a longer
// batch of tiny packets goes out as several messages.
const gatherMax = 4 * transport.BatchSize

// gatherer builds the same messages as encode without copying packet
// bytes: the count and headers go in its own buffer, and the message is
// an iovec list interleaving them with the packets' buffers, written with
// one writev, which on a seqpacket socket is one message. Not safe for
// concurrent use.
type gatherer struct {
	hdr  []byte
	iov  [][]byte
	bufs net.Buffers // what WriteTo consumes: a view of iov
}

func newGatherer() *gatherer {
	return &gatherer{
		hdr: make([]byte, countLen+gatherMax*headerLen),
		iov: make([][]byte, 0, 2*gatherMax),
	}
}

// gather points g.bufs at one message holding as many leading packets of
// pkts as fit (the rules of encode, and at most gatherMax), and returns
// how many it holds (≥ 1 when pkts is non-empty).
func (g *gatherer) gather(pkts []transport.Packet) (int, error) {
	iov := g.iov[:0]
	size, k := countLen, 0
	h := countLen
	for _, p := range pkts {
		if p.N < 0 || p.N > maxPayload || p.N > len(p.Buf) {
			return 0, fmt.Errorf("transportplugin: datagram of %d bytes (buffer %d) cannot be sent; the limit is %d", p.N, len(p.Buf), maxPayload)
		}
		if k > 0 && (size+headerLen+p.N > datachan.MaxMessage || k == gatherMax) {
			break
		}
		a16 := p.Addr.Addr().As16()
		copy(g.hdr[h:], a16[:])
		binary.BigEndian.PutUint16(g.hdr[h+16:], p.Addr.Port())
		binary.BigEndian.PutUint16(g.hdr[h+18:], uint16(p.N))
		start := h
		if k == 0 {
			start = 0 // the count rides with the first header
		}
		iov = append(iov, g.hdr[start:h+headerLen:h+headerLen])
		if p.N > 0 {
			iov = append(iov, p.Buf[:p.N:p.N])
		}
		h += headerLen
		size += headerLen + p.N
		k++
	}
	if k == 0 { // empty batch: a message of count 0
		iov = append(iov, g.hdr[:countLen])
	}
	binary.BigEndian.PutUint16(g.hdr, uint16(k))
	g.iov = iov
	g.bufs = iov
	return k, nil
}

// writeTo writes the gathered message to c and drops the references to
// the packets' buffers.
func (g *gatherer) writeTo(c *net.UnixConn) error {
	_, err := g.bufs.WriteTo(c)
	clear(g.iov)
	g.bufs = nil
	return err
}
