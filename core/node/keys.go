package node

import (
	"fmt"
	"io"
	"sync"

	"github.com/tarzan-net/tarzan/core/onion"
)

// onionKeys holds the X25519 keys tunnel handshakes are made against. The
// previous key is kept after a rotation so that clients holding the
// previous descriptor can still extend through us.
type onionKeys struct {
	mu   sync.RWMutex
	keys onion.OnionKeys // with public keys precomputed: one X25519 less per handshake
	pub  [32]byte
}

func (k *onionKeys) rotate(r io.Reader) error {
	priv, pub, err := onion.GenerateOnionKey(r)
	if err != nil {
		return fmt.Errorf("node: generating onion key: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	keys, err := onion.NewOnionKeys(&priv, k.keys.Current)
	if err != nil {
		return fmt.Errorf("node: onion keys: %w", err)
	}
	k.keys, k.pub = keys, pub
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
	return k.keys
}
