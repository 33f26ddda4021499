package node

import (
	"io"
	mrand "math/rand/v2"
	"sync"
)

// padReader fills cell padding: bytes nobody must predict, needed for
// every cell, so a system call per cell (crypto/rand) would dominate the
// relay path. ChaCha8 is a cryptographically strong generator; seeded from
// the node's randomness source it serves padding at memory speed.
type padReader struct {
	mu sync.Mutex
	g  *mrand.ChaCha8
}

func newPadReader(seed io.Reader) (*padReader, error) {
	var s [32]byte
	if _, err := io.ReadFull(seed, s[:]); err != nil {
		return nil, err
	}
	return &padReader{g: mrand.NewChaCha8(s)}, nil
}

func (p *padReader) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.g.Read(b)
}
