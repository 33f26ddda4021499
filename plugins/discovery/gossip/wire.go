package gossip

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/sdk/discovery"
)

// Wire format (see the package doc): every message starts with
// version(1) type(1) nonce(8).
const (
	wireVersion = 1

	typeDigest  = 1
	typeSummary = 2
	typeRequest = 3
	typeDescs   = 4

	numBuckets = 256
	sumSize    = 4
	prefixSize = 8
	entrySize  = prefixSize + 4 + 1 // id prefix, published (u32), flags
	headerSize = 2 + 8

	flagSendable = 0x01 // the sender would send this descriptor if asked

	// Largest counts that fit one message.
	maxSummaryEntries = (discovery.MaxMessage - headerSize - 8 - 32 - 2) / entrySize
	maxRequestIDs     = (discovery.MaxMessage - headerSize - 2) / prefixSize
	descsOverhead     = headerSize + 1
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("gossip: malformed message")

type prefix [prefixSize]byte

func prefixOf(id identity.ID) prefix { return prefix(id[:prefixSize]) }

// bucketOf places an ID in the digest: IDs are hashes, so the first byte
// is uniform.
func bucketOf(id identity.ID) int { return int(id[0]) }

// bucketOfPrefix is bucketOf for a listed prefix.
func bucketOfPrefix(p prefix) int { return int(p[0]) }

// entrySum is one descriptor's contribution to its bucket's sum.
func entrySum(id identity.ID, published uint32) uint32 {
	h := sha256.New()
	h.Write([]byte("tarzan-gossip-v1"))
	h.Write(id[:])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(published))
	h.Write(b[:])
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// wireTime is a published time on the wire: u32 Unix seconds, enough until
// 2106; later times saturate.
func wireTime(unix int64) uint32 {
	switch {
	case unix < 0:
		return 0
	case unix > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(unix)
}

type bitmap [numBuckets / 8]byte

func (b *bitmap) set(i int)      { b[i/8] |= 0x80 >> (i % 8) }
func (b *bitmap) has(i int) bool { return b[i/8]&(0x80>>(i%8)) != 0 }
func (b *bitmap) count() int {
	n := 0
	for _, x := range b {
		n += bits.OnesCount8(x)
	}
	return n
}

// summaryEntry lists one known descriptor.
type summaryEntry struct {
	prefix    prefix
	published uint32
	flags     byte
}

// message is any gossip message; which fields are used depends on typ.
type message struct {
	typ   byte
	nonce uint64 // DIGEST: fresh; SUMMARY, REQUEST, DESCS: echo of the receiver's nonce

	buckets bitmap   // DIGEST: non-empty buckets; SUMMARY: buckets listed completely
	sums    []uint32 // DIGEST: one per set bucket, ascending

	reply   uint64 // SUMMARY: the sender's nonce, echoed by REQUEST and DESCS
	entries []summaryEntry

	prefixes []prefix // REQUEST
	descs    [][]byte // DESCS
}

func (m *message) encode() ([]byte, error) {
	b := make([]byte, 0, discovery.MaxMessage)
	b = append(b, wireVersion, m.typ)
	b = binary.BigEndian.AppendUint64(b, m.nonce)
	switch m.typ {
	case typeDigest:
		if len(m.sums) != m.buckets.count() {
			return nil, fmt.Errorf("gossip: digest with %d sums for %d buckets", len(m.sums), m.buckets.count())
		}
		b = append(b, m.buckets[:]...)
		for _, s := range m.sums {
			b = binary.BigEndian.AppendUint32(b, s)
		}
	case typeSummary:
		if len(m.entries) > maxSummaryEntries {
			return nil, fmt.Errorf("gossip: %d summary entries", len(m.entries))
		}
		b = binary.BigEndian.AppendUint64(b, m.reply)
		b = append(b, m.buckets[:]...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.entries)))
		for _, e := range m.entries {
			b = append(b, e.prefix[:]...)
			b = binary.BigEndian.AppendUint32(b, e.published)
			b = append(b, e.flags)
		}
	case typeRequest:
		if len(m.prefixes) == 0 || len(m.prefixes) > maxRequestIDs {
			return nil, fmt.Errorf("gossip: request for %d descriptors", len(m.prefixes))
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.prefixes)))
		for _, p := range m.prefixes {
			b = append(b, p[:]...)
		}
	case typeDescs:
		if len(m.descs) == 0 || len(m.descs) > 255 {
			return nil, fmt.Errorf("gossip: %d descriptors in one message", len(m.descs))
		}
		b = append(b, byte(len(m.descs)))
		for _, d := range m.descs {
			if len(d) == 0 || len(d) > descriptor.MaxSize {
				return nil, fmt.Errorf("gossip: descriptor of %d bytes", len(d))
			}
			b = binary.BigEndian.AppendUint16(b, uint16(len(d)))
			b = append(b, d...)
		}
	default:
		return nil, fmt.Errorf("gossip: unknown message type %d", m.typ)
	}
	if len(b) > discovery.MaxMessage {
		return nil, fmt.Errorf("gossip: message of %d bytes, limit %d", len(b), discovery.MaxMessage)
	}
	return b, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// decode parses one message. It accepts exactly the encodings encode
// produces: one encoding per message, nothing trailing. The result does
// not alias b.
func decode(b []byte) (*message, error) {
	if len(b) > discovery.MaxMessage {
		return nil, malformed("%d bytes, limit %d", len(b), discovery.MaxMessage)
	}
	if len(b) < headerSize {
		return nil, malformed("%d bytes, shorter than the header", len(b))
	}
	if b[0] != wireVersion {
		return nil, malformed("version %d", b[0])
	}
	m := &message{typ: b[1], nonce: binary.BigEndian.Uint64(b[2:])}
	r := b[headerSize:]
	take := func(n int) ([]byte, bool) {
		if len(r) < n {
			return nil, false
		}
		v := r[:n]
		r = r[n:]
		return v, true
	}
	switch m.typ {
	case typeDigest:
		bm, ok := take(len(m.buckets))
		if !ok {
			return nil, malformed("digest without bucket map")
		}
		copy(m.buckets[:], bm)
		n := m.buckets.count()
		if len(r) != n*sumSize {
			return nil, malformed("digest has %d bytes of sums for %d buckets", len(r), n)
		}
		for range n {
			v, _ := take(sumSize)
			m.sums = append(m.sums, binary.BigEndian.Uint32(v))
		}
	case typeSummary:
		v, ok := take(8 + len(m.buckets) + 2)
		if !ok {
			return nil, malformed("summary header truncated")
		}
		m.reply = binary.BigEndian.Uint64(v)
		copy(m.buckets[:], v[8:])
		n := int(binary.BigEndian.Uint16(v[8+len(m.buckets):]))
		if len(r) != n*entrySize {
			return nil, malformed("summary has %d bytes for %d entries", len(r), n)
		}
		for i := range n {
			v, _ := take(entrySize)
			e := summaryEntry{prefix: prefix(v[:prefixSize]), published: binary.BigEndian.Uint32(v[prefixSize:]), flags: v[prefixSize+4]}
			if e.flags&^flagSendable != 0 {
				return nil, malformed("summary entry %d has reserved flags %#x", i, e.flags)
			}
			if i > 0 && !prefixLess(m.entries[i-1].prefix, e.prefix) {
				return nil, malformed("summary entries out of order at %d", i)
			}
			m.entries = append(m.entries, e)
		}
	case typeRequest:
		v, ok := take(2)
		if !ok {
			return nil, malformed("request without count")
		}
		n := int(binary.BigEndian.Uint16(v))
		if n == 0 || len(r) != n*prefixSize {
			return nil, malformed("request has %d bytes for %d IDs", len(r), n)
		}
		for range n {
			v, _ := take(prefixSize)
			m.prefixes = append(m.prefixes, prefix(v))
		}
	case typeDescs:
		v, ok := take(1)
		if !ok || v[0] == 0 {
			return nil, malformed("descriptors without count")
		}
		for i := range int(v[0]) {
			lb, ok := take(2)
			if !ok {
				return nil, malformed("descriptor %d: length truncated", i)
			}
			n := int(binary.BigEndian.Uint16(lb))
			if n == 0 || n > descriptor.MaxSize {
				return nil, malformed("descriptor %d is %d bytes", i, n)
			}
			d, ok := take(n)
			if !ok {
				return nil, malformed("descriptor %d truncated", i)
			}
			m.descs = append(m.descs, append([]byte(nil), d...))
		}
		if len(r) != 0 {
			return nil, malformed("%d bytes after the descriptors", len(r))
		}
	default:
		return nil, malformed("unknown type %d", m.typ)
	}
	return m, nil
}

func prefixLess(a, b prefix) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
