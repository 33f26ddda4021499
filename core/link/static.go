package link

import (
	"fmt"
	"io"

	"golang.org/x/crypto/curve25519"
)

// Static is a node's X25519 link key; Public goes in its descriptor as
// LinkKey.
type Static struct{ Private, Public [32]byte }

// NewStatic generates a link key from rand.
func NewStatic(rand io.Reader) (Static, error) {
	var s Static
	if _, err := io.ReadFull(rand, s.Private[:]); err != nil {
		return Static{}, fmt.Errorf("link: reading randomness: %w", err)
	}
	return StaticFromPrivate(s.Private)
}

// StaticFromPrivate derives the public half of an X25519 private key.
func StaticFromPrivate(priv [32]byte) (Static, error) {
	pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		return Static{}, fmt.Errorf("link: deriving public key: %w", err)
	}
	return Static{Private: priv, Public: [32]byte(pub)}, nil
}

// String never shows the private key.
func (s Static) String() string { return fmt.Sprintf("link-static(%x…)", s.Public[:4]) }

// GoString keeps %#v from dumping the private key.
func (s Static) GoString() string { return s.String() }
