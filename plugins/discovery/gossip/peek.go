package gossip

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/tarzan-net/tarzan/core/identity"
)

// Descriptor fields peek reads (docs/PROTOCOL.md §2.2).
const (
	fieldIdentity  = 0x01
	fieldPublished = 0x07
)

// peek reads the claimed ID and published time of an encoded descriptor
// without verifying anything, so that copies of what we already have are
// dropped before the (expensive) signature check. Whatever it returns is
// a claim: only descriptor.Parse makes it a fact.
func peek(raw []byte) (id identity.ID, published uint32, ok bool) {
	if len(raw) < 1 {
		return id, 0, false
	}
	var haveID, havePub bool
	for off := 1; off+3 <= len(raw); {
		t, n := raw[off], int(binary.BigEndian.Uint16(raw[off+1:]))
		v := raw[off+3:]
		if len(v) < n {
			return id, 0, false
		}
		v = v[:n]
		switch {
		case t == fieldIdentity && n == 32:
			id, haveID = identity.ID(sha256.Sum256(v)), true
		case t == fieldPublished && n == 8:
			published, havePub = wireTime(int64(min(binary.BigEndian.Uint64(v), 1<<62))), true
		}
		if t >= fieldPublished {
			break
		}
		off += 3 + n
	}
	return id, published, haveID && havePub
}
