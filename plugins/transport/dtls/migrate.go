package dtls

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/ciphersuite"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
)

// Sessions do not negotiate DTLS Connection IDs (RFC 9146; pion/dtls v3
// has them): a CID would put a stable per-link identifier in every
// record, in the clear, which an observer could follow across a peer's
// address changes. A peer that moved is instead recognised by its keys, as WireGuard roams:
// the receive loop trial-decrypts a record from an unknown address under
// the peer write key of each established session. This needs the key
// outside pion; pion exports the session state (master secret, randoms,
// suite) only as a gob blob, from which the key block is derived again
// exactly as pion derives it (RFC 5246 §6.3).

// sessionSecrets mirrors the fields of pion's serializedState we need;
// gob matches fields by name and skips the rest.
type sessionSecrets struct {
	LocalRandom   [32]byte
	RemoteRandom  [32]byte
	CipherSuiteID uint16
	MasterSecret  []byte
	IsClient      bool
}

// peerWriteKey returns a GCM whose Decrypt opens records the peer sends.
func peerWriteKey(c *dtls.Conn) (*ciphersuite.GCM, error) {
	state, ok := c.ConnectionState()
	if !ok {
		return nil, errors.New("dtls: no session state before the handshake")
	}
	raw, err := state.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("dtls: export session state: %w", err)
	}
	var sec sessionSecrets
	if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&sec); err != nil {
		return nil, fmt.Errorf("dtls: decode session state: %w", err)
	}
	if dtls.CipherSuiteID(sec.CipherSuiteID) != dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 {
		return nil, errors.New("dtls: unexpected cipher suite")
	}
	clientRandom, serverRandom := sec.RemoteRandom, sec.LocalRandom
	if sec.IsClient {
		clientRandom, serverRandom = sec.LocalRandom, sec.RemoteRandom
	}
	const keyLen, ivLen = 16, 4 // AES-128-GCM, implicit nonce part
	k, err := prf.GenerateEncryptionKeys(sec.MasterSecret, clientRandom[:], serverRandom[:], 0, keyLen, ivLen, sha256.New)
	if err != nil {
		return nil, fmt.Errorf("dtls: derive keys: %w", err)
	}
	if sec.IsClient {
		return ciphersuite.NewGCM(k.ClientWriteKey, k.ClientWriteIV, k.ServerWriteKey, k.ServerWriteIV)
	}
	return ciphersuite.NewGCM(k.ServerWriteKey, k.ServerWriteIV, k.ClientWriteKey, k.ClientWriteIV)
}
