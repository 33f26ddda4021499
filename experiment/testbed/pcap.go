package testbed

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/netip"
	"os"
	"time"
)

// Classic libpcap savefiles (what `tcpdump -w` writes), read by hand: a
// 24-byte global header, then per packet a 16-byte record header and the
// captured bytes. Only Ethernet captures are understood, and only IPv4
// with UDP or TCP inside; everything else is counted and skipped.

// LinkTypeEthernet is DLT_EN10MB, the link type of a capture on a veth.
const LinkTypeEthernet = 1

const (
	magicMicro        = 0xa1b2c3d4
	magicNano         = 0xa1b23c4d
	pcapGlobalHdrLen  = 24
	pcapRecordHdrLen  = 16
	maxPcapRecordSize = 1 << 18
	keyBytes          = 32 // transport payload bytes hashed into Packet.Key
)

// Packet is what the test bed needs of one captured IPv4 packet.
type Packet struct {
	Time             time.Time
	Src, Dst         netip.Addr
	Proto            uint8 // 6 TCP, 17 UDP
	SrcPort, DstPort uint16
	// Payload is the transport payload length in bytes: from the UDP
	// header's length, or for TCP the IP total length less the IP and TCP
	// headers. It does not depend on the snap length.
	Payload int
	// Key hashes the first captured bytes of the transport payload (up to
	// 32): an encrypted link frame's key identifies it, so the same frame
	// seen on the sender's and on the receiver's veth can be matched.
	Key uint64
	// Flags are the TCP flags (FIN 0x01, SYN 0x02, RST 0x04, ...).
	Flags uint8
}

// PcapStats counts what ReadPcap saw.
type PcapStats struct {
	Records int // packet records in the file
	Packets int // IPv4 UDP/TCP packets handed to fn
	Skipped int // other protocols, fragments, truncated headers
}

// ErrNotPcap is returned for a file that is not a classic pcap savefile.
var ErrNotPcap = errors.New("not a classic pcap file (want magic a1b2c3d4 or a1b23c4d; pcapng is not supported)")

// ReadPcapFile reads the savefile at path; see ReadPcap.
func ReadPcapFile(path string, fn func(*Packet)) (PcapStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return PcapStats{}, err
	}
	defer f.Close()
	st, err := ReadPcap(bufio.NewReaderSize(f, 1<<20), fn)
	if err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// ReadPcap calls fn for every IPv4 UDP or TCP packet of a classic pcap
// savefile with Ethernet link type, in file order. The Packet passed to
// fn is reused: copy what you keep. A file cut short in its last record
// (a capture killed while writing) ends without error.
func ReadPcap(r io.Reader, fn func(*Packet)) (PcapStats, error) {
	var st PcapStats
	var gh [pcapGlobalHdrLen]byte
	if _, err := io.ReadFull(r, gh[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return st, fmt.Errorf("%w: shorter than its 24-byte header", ErrNotPcap)
		}
		return st, err
	}
	var bo binary.ByteOrder
	nano := false
	switch {
	case binary.LittleEndian.Uint32(gh[0:4]) == magicMicro:
		bo = binary.LittleEndian
	case binary.BigEndian.Uint32(gh[0:4]) == magicMicro:
		bo = binary.BigEndian
	case binary.LittleEndian.Uint32(gh[0:4]) == magicNano:
		bo, nano = binary.LittleEndian, true
	case binary.BigEndian.Uint32(gh[0:4]) == magicNano:
		bo, nano = binary.BigEndian, true
	default:
		return st, ErrNotPcap
	}
	if lt := bo.Uint32(gh[20:24]) & 0x0fffffff; lt != LinkTypeEthernet {
		return st, fmt.Errorf("link type %d: only Ethernet (1) captures are understood", lt)
	}
	var rh [pcapRecordHdrLen]byte
	buf := make([]byte, 0, 2048)
	var p Packet
	for {
		if _, err := io.ReadFull(r, rh[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return st, nil
			}
			return st, err
		}
		sec, frac := bo.Uint32(rh[0:4]), bo.Uint32(rh[4:8])
		incl := bo.Uint32(rh[8:12])
		if incl > maxPcapRecordSize {
			return st, fmt.Errorf("record %d: captured length %d is implausible (corrupt file?)", st.Records+1, incl)
		}
		if cap(buf) < int(incl) {
			buf = make([]byte, incl)
		}
		buf = buf[:incl]
		if _, err := io.ReadFull(r, buf); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return st, nil
			}
			return st, err
		}
		st.Records++
		ns := int64(frac)
		if !nano {
			ns *= 1000
		}
		p = Packet{Time: time.Unix(int64(sec), ns)}
		if !parseEthernet(buf, &p) {
			st.Skipped++
			continue
		}
		st.Packets++
		fn(&p)
	}
}

// parseEthernet fills p from an Ethernet frame holding IPv4 and UDP or
// TCP; false for anything else.
func parseEthernet(b []byte, p *Packet) bool {
	if len(b) < 14 {
		return false
	}
	et := binary.BigEndian.Uint16(b[12:14])
	b = b[14:]
	for et == 0x8100 || et == 0x88a8 { // VLAN tags
		if len(b) < 4 {
			return false
		}
		et = binary.BigEndian.Uint16(b[2:4])
		b = b[4:]
	}
	if et != 0x0800 {
		return false
	}
	return parseIPv4(b, p)
}

// parseIPv4 parses an IPv4 header and the UDP or TCP header after it.
func parseIPv4(b []byte, p *Packet) bool {
	if len(b) < 20 || b[0]>>4 != 4 {
		return false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || len(b) < ihl || total < ihl {
		return false
	}
	if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 { // a later fragment: no transport header
		return false
	}
	p.Proto = b[9]
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	t := b[ihl:]
	var payload []byte
	switch p.Proto {
	case 17:
		if len(t) < 8 {
			return false
		}
		p.SrcPort = binary.BigEndian.Uint16(t[0:2])
		p.DstPort = binary.BigEndian.Uint16(t[2:4])
		ulen := int(binary.BigEndian.Uint16(t[4:6]))
		if ulen < 8 {
			return false
		}
		p.Payload = ulen - 8
		payload = t[8:]
	case 6:
		if len(t) < 20 {
			return false
		}
		p.SrcPort = binary.BigEndian.Uint16(t[0:2])
		p.DstPort = binary.BigEndian.Uint16(t[2:4])
		doff := int(t[12]>>4) * 4
		p.Flags = t[13]
		if doff < 20 {
			return false
		}
		p.Payload = max(total-ihl-doff, 0)
		if len(t) >= doff {
			payload = t[doff:]
		}
	default:
		return false
	}
	payload = payload[:min(len(payload), keyBytes, p.Payload)]
	h := fnv.New64a()
	h.Write(payload)
	p.Key = h.Sum64()
	return true
}

// PcapWriter writes a classic pcap savefile with microsecond timestamps
// and Ethernet link type: for tests, and to cut captures down.
type PcapWriter struct {
	w       io.Writer
	snaplen int
}

// NewPcapWriter writes the global header and returns the writer.
func NewPcapWriter(w io.Writer, snaplen int) (*PcapWriter, error) {
	var gh [pcapGlobalHdrLen]byte
	binary.LittleEndian.PutUint32(gh[0:4], magicMicro)
	binary.LittleEndian.PutUint16(gh[4:6], 2)
	binary.LittleEndian.PutUint16(gh[6:8], 4)
	binary.LittleEndian.PutUint32(gh[16:20], uint32(snaplen))
	binary.LittleEndian.PutUint32(gh[20:24], LinkTypeEthernet)
	if _, err := w.Write(gh[:]); err != nil {
		return nil, err
	}
	return &PcapWriter{w: w, snaplen: snaplen}, nil
}

// WritePacket writes one frame captured at t (cut to the snap length).
func (pw *PcapWriter) WritePacket(t time.Time, frame []byte) error {
	incl := min(len(frame), pw.snaplen)
	var rh [pcapRecordHdrLen]byte
	binary.LittleEndian.PutUint32(rh[0:4], uint32(t.Unix()))
	binary.LittleEndian.PutUint32(rh[4:8], uint32(t.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(rh[8:12], uint32(incl))
	binary.LittleEndian.PutUint32(rh[12:16], uint32(len(frame)))
	if _, err := pw.w.Write(rh[:]); err != nil {
		return err
	}
	_, err := pw.w.Write(frame[:incl])
	return err
}

// EthernetIPv4 builds an Ethernet frame carrying an IPv4 packet with a
// UDP (proto 17) or TCP (proto 6, ACK|PSH, 20-byte header) segment of
// payload: for tests.
func EthernetIPv4(src, dst netip.AddrPort, proto uint8, payload []byte) []byte {
	th := 8
	if proto == 6 {
		th = 20
	}
	total := 20 + th + len(payload)
	b := make([]byte, 14+total)
	binary.BigEndian.PutUint16(b[12:14], 0x0800)
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], uint16(total))
	ip[8] = 64
	ip[9] = proto
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	t := ip[20:]
	binary.BigEndian.PutUint16(t[0:2], src.Port())
	binary.BigEndian.PutUint16(t[2:4], dst.Port())
	if proto == 17 {
		binary.BigEndian.PutUint16(t[4:6], uint16(8+len(payload)))
	} else {
		t[12] = 5 << 4
		t[13] = 0x18
	}
	copy(t[th:], payload)
	return b
}
