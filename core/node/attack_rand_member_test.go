package node

import (
	"encoding/binary"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/netip"
	"testing"

	"golang.org/x/crypto/chacha20"

	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

// streamReader is a reproducible randomness source (a ChaCha20 keystream),
// so a test can know everything the node drew from it.
type streamReader struct{ c *chacha20.Cipher }

func newStreamReader(t *testing.T) *streamReader {
	c, err := chacha20.NewUnauthenticatedCipher(make([]byte, 32), make([]byte, 12))
	if err != nil {
		t.Fatal(err)
	}
	return &streamReader{c}
}

func (r *streamReader) Read(p []byte) (int, error) {
	clear(p)
	r.c.XORKeyStream(p, p)
	return len(p), nil
}

// TestAttackSessionIndexPredictable: session indices appear in clear on
// every data frame and handshake response. They must not come from the
// node's fast statistical generator (a PCG, also behind paths, circuit IDs
// and cover timing), whose whole state follows from its 16-byte seed:
// an observer who learns that state must not be able to predict indices.
// The test plays an attacker who knows the generator's state.
func TestAttackSessionIndexPredictable(t *testing.T) {
	src := newStreamReader(t)
	net := transporttest.NewNetwork()
	o := Options{
		Identity: newIdentity(t), Transport: net.NewTransport(), Listen: netip.MustParseAddrPort("127.9.0.1:7700"),
		Discovery: newListDiscovery(nil), Rand: src, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	// The attacker's copy of the state: New seeds its PCG with the first
	// 16 bytes it reads.
	mirror := newStreamReader(t)
	var seed [16]byte
	mirror.Read(seed[:])
	pcg := mrand.New(mrand.NewPCG(binary.BigEndian.Uint64(seed[:8]), binary.BigEndian.Uint64(seed[8:])))
	n, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	const draws = 16
	hits := 0
	for i := 0; i < draws; i++ {
		n.mu.Lock()
		idx := n.newIndexLocked(nil)
		n.mu.Unlock()
		want := pcg.Uint32()
		for want == 0 {
			want = pcg.Uint32()
		}
		if idx == want {
			hits++
		}
	}
	if hits > 0 {
		t.Fatalf("ATTACK SUCCEEDED: %d of %d session indices predicted from the node's PCG state", hits, draws)
	}
}
