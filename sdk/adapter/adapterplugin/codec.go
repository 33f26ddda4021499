package adapterplugin

import (
	"encoding/binary"
	"errors"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
)

// Data-channel framing; doc.go has the byte layout.
const (
	countLen   = 2
	headerLen  = 8 + 2 // flow, length
	maxPacket  = 65535 // the length field is 16 bits; IP packets fit
	maxMessage = datachan.MaxMessage
)

var errMalformed = errors.New("adapterplugin: malformed data-channel message")

// encode appends one message holding as many leading packets
// (pkts[i].Buf[:N]) as fit, and returns it, how many of pkts it consumed
// (≥ 1 when pkts is non-empty) and how many of those it skipped: a packet
// whose N lies outside its buffer or above maxPacket is dropped, as the
// adapter contract asks, not the batch failed.
func encode(dst []byte, pkts []adapter.Packet) (msg []byte, consumed, skipped int) {
	dst = append(dst, 0, 0)
	k := 0
	for _, p := range pkts {
		if p.N < 0 || p.N > maxPacket || p.N > len(p.Buf) {
			consumed++
			skipped++
			continue
		}
		if k > 0 && (len(dst)+headerLen+p.N > maxMessage || k == 0xffff) {
			break
		}
		dst = binary.BigEndian.AppendUint64(dst, p.Flow)
		dst = binary.BigEndian.AppendUint16(dst, uint16(p.N))
		dst = append(dst, p.Buf[:p.N]...)
		k++
		consumed++
	}
	binary.BigEndian.PutUint16(dst, uint16(k))
	return dst, consumed, skipped
}

// decoder walks one message packet by packet, without copying.
type decoder struct {
	rest []byte
	left int
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

// next returns the next packet; data aliases the message.
func (d *decoder) next() (flow uint64, data []byte, err error) {
	if d.left == 0 || len(d.rest) < headerLen {
		d.left = 0
		return 0, nil, errMalformed
	}
	flow = binary.BigEndian.Uint64(d.rest)
	n := int(binary.BigEndian.Uint16(d.rest[8:]))
	if len(d.rest) < headerLen+n {
		d.left = 0
		return 0, nil, errMalformed
	}
	data = d.rest[headerLen : headerLen+n]
	d.rest = d.rest[headerLen+n:]
	d.left--
	return flow, data, nil
}
