package identity

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// ID names a node: SHA-256 of its Ed25519 identity public key.
type ID [32]byte

// ErrBadID is returned by ParseID for text that is not 64 hex digits.
var ErrBadID = errors.New("identity: malformed node ID")

// IDFromPublic derives the node ID of an identity public key.
func IDFromPublic(pub ed25519.PublicKey) ID {
	return ID(sha256.Sum256(pub))
}

// ParseID parses the 64-hex-digit form produced by ID.String.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return ID{}, fmt.Errorf("%w: want %d hex digits, got %d characters", ErrBadID, 2*len(id), len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("%w: %v", ErrBadID, err)
	}
	return id, nil
}

// String is the full lower-case hex form.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short is the first 8 hex digits: what logs show for a peer.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is the zero value (no node).
func (id ID) IsZero() bool { return id == ID{} }
