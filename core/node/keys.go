package node

import (
	"fmt"
	"io"
	"sync"

	"github.com/tarzan-net/tarzan/core/onion"
	"golang.org/x/crypto/curve25519"
)

// onionKeys holds the X25519 keys tunnel handshakes are made against. The
// previous key is kept after a rotation so that clients holding the
// previous descriptor can still extend through us.
type onionKeys struct {
	mu        sync.RWMutex
	cur, prev *[32]byte
	pub       [32]byte
}

func (k *onionKeys) rotate(r io.Reader) error {
	var priv [32]byte
	if _, err := io.ReadFull(r, priv[:]); err != nil {
		return fmt.Errorf("node: generating onion key: %w", err)
	}
	pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		return fmt.Errorf("node: deriving onion key: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.prev, k.cur = k.cur, &priv
	copy(k.pub[:], pub)
	return nil
}

func (k *onionKeys) public() [32]byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.pub
}

func (k *onionKeys) server() onion.OnionKeys {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return onion.OnionKeys{Current: k.cur, Previous: k.prev}
}
