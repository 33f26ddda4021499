package adapterplugin

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
)

// Data-channel framing; doc.go has the byte layout.
const (
	countLen   = 2
	lenLen     = 2
	maxPacket  = 65535 // the length field is 16 bits; IP packets fit
	batchSize  = 64    // packets the child reads per ReadPackets
	maxMessage = datachan.MaxMessage
)

var errMalformed = errors.New("adapterplugin: malformed data-channel message")

// encode appends one message holding as many leading packets (each
// bufs[i][offset:]) as fit, and returns it and how many it holds.
func encode(dst []byte, bufs [][]byte, offset int) ([]byte, int, error) {
	dst = append(dst, 0, 0)
	k := 0
	for _, b := range bufs {
		if offset > len(b) {
			return nil, 0, fmt.Errorf("adapterplugin: offset %d beyond a %d-byte buffer", offset, len(b))
		}
		p := b[offset:]
		if len(p) > maxPacket {
			return nil, 0, fmt.Errorf("adapterplugin: packet of %d bytes exceeds %d", len(p), maxPacket)
		}
		if k > 0 && (len(dst)+lenLen+len(p) > maxMessage || k == 0xffff) {
			break
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(p)))
		dst = append(dst, p...)
		k++
	}
	binary.BigEndian.PutUint16(dst, uint16(k))
	return dst, k, nil
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

func (d *decoder) next() ([]byte, error) {
	if d.left == 0 || len(d.rest) < lenLen {
		d.left = 0
		return nil, errMalformed
	}
	n := int(binary.BigEndian.Uint16(d.rest))
	if len(d.rest) < lenLen+n {
		d.left = 0
		return nil, errMalformed
	}
	p := d.rest[lenLen : lenLen+n]
	d.rest = d.rest[lenLen+n:]
	d.left--
	return p, nil
}
