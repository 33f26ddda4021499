package udp

import "github.com/tarzan-net/tarzan/sdk/transport"

// Segmentation offload, the parts that need no socket: which packets of a
// batch go out as one UDP_SEGMENT message, and how a message coalesced by
// UDP_GRO splits back into datagrams. gso_linux.go holds the control
// messages; batch.go the system calls.

const (
	// maxSegments is the most datagrams in one UDP_SEGMENT message: the
	// kernel's UDP_MAX_SEGMENTS (64 before Linux 6.10, 128 since).
	maxSegments = 64
	// maxGSOBytes is the most payload in one UDP_SEGMENT message: an IPv4
	// datagram's limit (65535 − 20 − 8); IPv6 allows 20 bytes more, which
	// never fits one more link frame, so both families use this one.
	maxGSOBytes = 1<<16 - 1 - 20 - 8
	// groSlot is the receive buffer of one message when UDP_GRO is on: a
	// coalesced message carries up to 64 KiB.
	groSlot = 1 << 16
)

// group is one message of a send: pkts[first:first+count], all to one
// destination. count > 1 means a UDP_SEGMENT message cut at size bytes
// (every datagram size bytes long except perhaps the last, shorter one).
type group struct {
	first, count, size int
}

// coalesce appends to groups the messages that send pkts in order: runs
// of consecutive packets to the same destination with the size of the
// run's first packet (a shorter one may end the run) become one message,
// bounded by maxSegs datagrams and maxBytes of payload. It stops after
// maxGroups messages; the groups cover a prefix of pkts.
func coalesce(groups []group, pkts []transport.Packet, maxGroups, maxSegs, maxBytes int) []group {
	for i := 0; i < len(pkts) && len(groups) < maxGroups; {
		first := &pkts[i]
		g := group{first: i, count: 1, size: first.N}
		total := first.N
		for j := i + 1; j < len(pkts) && g.count < maxSegs && g.size > 0; j++ {
			p := &pkts[j]
			if p.Addr != first.Addr || p.N == 0 || p.N > g.size || total+p.N > maxBytes {
				break
			}
			g.count++
			total += p.N
			if p.N < g.size {
				break // only the last segment may be short
			}
		}
		groups = append(groups, g)
		i += g.count
	}
	return groups
}

// regroup returns pkts (at most transport.BatchSize of them) with the
// packets to each destination brought together, destinations in order of
// first appearance, each destination's packets in their own order, so
// that a batch interleaving several peers still coalesces per peer. The
// order between peers does not matter: they are different paths. dst
// (capacity ≥ len(pkts)) receives the new order; pkts comes back as it is
// when it is already one run per destination.
func regroup(dst, pkts []transport.Packet) []transport.Packet {
	runs := 1
	for i := 1; i < len(pkts); i++ {
		if pkts[i].Addr != pkts[i-1].Addr {
			runs++
		}
	}
	if runs <= 2 { // one or two runs: no destination comes back
		return pkts
	}
	var taken [transport.BatchSize]bool
	dst = dst[:0]
	for i := range pkts {
		if taken[i] {
			continue
		}
		a := pkts[i].Addr
		for j := i; j < len(pkts); j++ {
			if !taken[j] && pkts[j].Addr == a {
				dst = append(dst, pkts[j])
				taken[j] = true
			}
		}
	}
	return dst
}

// segments walks the datagrams of one received message: the whole of buf
// when seg is 0 (not coalesced, perhaps empty), else seg-byte pieces, the
// last perhaps shorter.
type segments struct {
	buf  []byte
	seg  int
	done bool
}

func (s *segments) reset(buf []byte, seg int) { *s = segments{buf: buf, seg: seg} }

// next returns the next datagram, or false when the message is used up.
func (s *segments) next() ([]byte, bool) {
	if s.done {
		return nil, false
	}
	n := len(s.buf)
	if s.seg > 0 && s.seg < n {
		n = s.seg
	}
	d := s.buf[:n:n]
	s.buf = s.buf[n:]
	s.done = len(s.buf) == 0
	return d, true
}
