// Package ptcap checks a packet capture of a pluggable transport's links
// for Tarzan's frame structure: what an observer of the wire would use to
// recognise Tarzan under a PT. It reads the classic pcap format tcpdump
// writes (-w), IPv4 and IPv6 over Ethernet (Linux lo), Linux cooked
// capture (any) or raw IP.
//
// What Tarzan's links look like without a PT, and what Check therefore
// looks for on the PT's legs (docs/PT.md has the measured figures):
//
//   - UDP datagrams (over udp every link packet is one datagram of the
//     fixed frame size);
//   - the pt plugin's own stream structure, which only the PT hides: the
//     hello "TZPT\x01" at the start of a stream, and frames as a 2-byte
//     length (the frame size, 0x0580 for 1,408) then the frame, so TCP
//     payloads that open with that length or whose sizes are multiples
//     of frame+2;
//   - payload sizes clustering at one value (a fixed-size frame written
//     alone makes one segment of one size).
package ptcap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
)

// Segment is one TCP segment with payload, or one UDP datagram.
type Segment struct {
	UDP      bool
	Src, Dst netip.AddrPort
	Len      int    // payload length, from the IP header
	Payload  []byte // the captured part of the payload
}

// Read returns the TCP segments with payload and the UDP datagrams of a
// pcap stream; other packets are skipped.
func Read(r io.Reader) ([]Segment, error) {
	var gh [24]byte
	if _, err := io.ReadFull(r, gh[:]); err != nil {
		return nil, fmt.Errorf("ptcap: pcap header: %w", err)
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(gh[:4]) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return nil, errors.New("ptcap: not a pcap file")
	}
	link := bo.Uint32(gh[20:24]) & 0x0fffffff
	var out []Segment
	var rh [16]byte
	for {
		if _, err := io.ReadFull(r, rh[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return out, nil // a capture cut short by the kill: keep what is there
			}
			return out, err
		}
		incl := bo.Uint32(rh[8:12])
		if incl > 1<<18 {
			return out, fmt.Errorf("ptcap: record of %d bytes", incl)
		}
		data := make([]byte, incl)
		if _, err := io.ReadFull(r, data); err != nil {
			return out, nil
		}
		ip, ok := network(link, data)
		if !ok {
			continue
		}
		if s, ok := parseIP(ip); ok {
			out = append(out, s)
		}
	}
}

// network strips the link-layer header.
func network(link uint32, d []byte) ([]byte, bool) {
	switch link {
	case 1: // Ethernet
		if len(d) < 14 {
			return nil, false
		}
		return d[14:], true
	case 113: // Linux cooked v1
		if len(d) < 16 {
			return nil, false
		}
		return d[16:], true
	case 276: // Linux cooked v2
		if len(d) < 20 {
			return nil, false
		}
		return d[20:], true
	case 101, 12, 14: // raw IP
		return d, true
	case 0: // BSD loopback
		if len(d) < 4 {
			return nil, false
		}
		return d[4:], true
	}
	return nil, false
}

func parseIP(ip []byte) (Segment, bool) {
	if len(ip) < 1 {
		return Segment{}, false
	}
	var src, dst netip.Addr
	var proto byte
	var body []byte
	var plen int // IP payload length
	switch ip[0] >> 4 {
	case 4:
		if len(ip) < 20 {
			return Segment{}, false
		}
		ihl := int(ip[0]&15) * 4
		tot := int(binary.BigEndian.Uint16(ip[2:4]))
		if ihl < 20 || len(ip) < ihl || tot < ihl {
			return Segment{}, false
		}
		src, dst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
		proto, body, plen = ip[9], ip[ihl:], tot-ihl
	case 6:
		if len(ip) < 40 {
			return Segment{}, false
		}
		src, dst = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
		proto, body, plen = ip[6], ip[40:], int(binary.BigEndian.Uint16(ip[4:6]))
	default:
		return Segment{}, false
	}
	port := func(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
	switch proto {
	case 6:
		if len(body) < 20 {
			return Segment{}, false
		}
		off := int(body[12]>>4) * 4
		n := plen - off
		if n <= 0 || len(body) < off {
			return Segment{}, false
		}
		return Segment{Src: netip.AddrPortFrom(src, port(body[0:])), Dst: netip.AddrPortFrom(dst, port(body[2:])),
			Len: n, Payload: body[off:]}, true
	case 17:
		if len(body) < 8 {
			return Segment{}, false
		}
		return Segment{UDP: true, Src: netip.AddrPortFrom(src, port(body[0:])), Dst: netip.AddrPortFrom(dst, port(body[2:])),
			Len: plen - 8, Payload: body[8:]}, true
	}
	return Segment{}, false
}

// Report summarises segments against a frame size.
type Report struct {
	Frame          int // the link frame size looked for (1,408)
	Segments       int // TCP segments with payload
	UDP            int // UDP datagrams
	Flows          int // TCP flows (one direction each)
	TopSize        int // the most common payload size
	TopCount       int // how many segments have it
	Sizes          int // distinct payload sizes
	FrameSized     int // payloads of k·(frame+2) bytes, frame or frame+8 bytes
	LengthPrefixed int // payloads opening with the frame's 2-byte length
	Hello          int // payloads holding the pt plugin's hello magic
}

// helloMagic is plugins/transport/pt's stream opener.
const helloMagic = "TZPT\x01"

// Analyze summarises segs; frame is the link frame size.
func Analyze(segs []Segment, frame int) Report {
	r := Report{Frame: frame}
	sizes := map[int]int{}
	flows := map[[2]netip.AddrPort]bool{}
	var prefix [2]byte
	binary.BigEndian.PutUint16(prefix[:], uint16(frame))
	for _, s := range segs {
		if s.UDP {
			r.UDP++
			continue
		}
		r.Segments++
		flows[[2]netip.AddrPort{s.Src, s.Dst}] = true
		sizes[s.Len]++
		if s.Len%(frame+2) == 0 || s.Len == frame || s.Len == frame+8 {
			r.FrameSized++
		}
		if bytes.HasPrefix(s.Payload, prefix[:]) {
			r.LengthPrefixed++
		}
		if bytes.Contains(s.Payload, []byte(helloMagic)) {
			r.Hello++
		}
	}
	r.Flows, r.Sizes = len(flows), len(sizes)
	keys := make([]int, 0, len(sizes))
	for k := range sizes {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		if sizes[k] > r.TopCount {
			r.TopSize, r.TopCount = k, sizes[k]
		}
	}
	return r
}

// Thresholds of Check. On the plaintext legs of a pt network (the frames
// between the plugin and its PT, inside the host) the measured shares were
// 47 % of segments at one size (1,410 B), 49 % frame-sized, 70 % opening
// with the length and every stream opening with the hello; over obfs4,
// 1.4 %, ~0 %, 0 % and none.
const (
	MinSegments       = 100  // fewer: the capture saw too little to judge
	MaxTopShare       = 0.10 // of segments at the most common size
	MaxFrameSized     = 0.05
	MaxLengthPrefixed = 0.02
)

// Check fails if r shows Tarzan's frame structure, or saw too little.
func (r Report) Check() error {
	var errs []error
	if r.Segments < MinSegments {
		errs = append(errs, fmt.Errorf("only %d TCP segments with payload captured (want ≥ %d)", r.Segments, MinSegments))
	}
	if r.UDP > 0 {
		errs = append(errs, fmt.Errorf("%d UDP datagrams on the PT's ports", r.UDP))
	}
	if r.Hello > 0 {
		errs = append(errs, fmt.Errorf("%d segments carry the plaintext hello %q", r.Hello, helloMagic))
	}
	n := float64(max(r.Segments, 1))
	if s := float64(r.TopCount) / n; s > MaxTopShare {
		errs = append(errs, fmt.Errorf("the most common size, %d bytes, is %.1f %% of segments (want ≤ %.0f %%)", r.TopSize, 100*s, 100*MaxTopShare))
	}
	if s := float64(r.FrameSized) / n; s > MaxFrameSized {
		errs = append(errs, fmt.Errorf("%.1f %% of segments are frame-sized (want ≤ %.0f %%)", 100*s, 100*MaxFrameSized))
	}
	if s := float64(r.LengthPrefixed) / n; s > MaxLengthPrefixed {
		errs = append(errs, fmt.Errorf("%.1f %% of segments open with the frame length (want ≤ %.0f %%)", 100*s, 100*MaxLengthPrefixed))
	}
	return errors.Join(errs...)
}

func (r Report) String() string {
	n := float64(max(r.Segments, 1))
	return fmt.Sprintf("%d TCP segments in %d flows, %d UDP; %d sizes, most common %d B (%.1f %%); frame-sized %.1f %%; opening with the frame length %.1f %%; hello %d",
		r.Segments, r.Flows, r.UDP, r.Sizes, r.TopSize, 100*float64(r.TopCount)/n,
		100*float64(r.FrameSized)/n, 100*float64(r.LengthPrefixed)/n, r.Hello)
}
