package transport

import (
	"crypto/ed25519"
	"net/netip"
)

// Credentials bind a transport's own keys to the node's identity without
// giving the transport the identity key.
//
// Most transports carry opaque datagrams and never need them: the core
// authenticates peers itself inside the link frames. A transport that
// authenticates at its own layer (DTLS) presents CertKey to its peers
// together with Endorsement, which any peer can check against IdentityKey
// with VerifyEndorsement. A stolen CertKey lets an attacker pass the
// transport's handshake but not the core's link handshake.
type Credentials struct {
	NodeID      [32]byte
	CertKey     ed25519.PrivateKey // a key made for the transport; never the identity key
	Endorsement []byte             // Endorse(identity key, CertKey's public key)
	IdentityKey ed25519.PublicKey  // the node's public identity key
}

// CredentialSetter is implemented by transports that authenticate at their
// own layer. The core calls SetCredentials before Listen and again whenever
// it rotates CertKey; a transport applies new credentials to handshakes
// that start afterwards. It keeps c (the core does not modify it later).
type CredentialSetter interface {
	SetCredentials(c Credentials) error
}

// PeerVerifier tells an authenticating transport which identity to expect
// at an address (the core knows it from the peer's descriptor). A handshake
// with addr then succeeds only if the peer's endorsement verifies under
// identityKey. For an address never set (or set to nil) the transport
// accepts any endorsement that verifies under the identity key it carries,
// and reports that identity.
type PeerVerifier interface {
	SetPeer(addr netip.AddrPort, identityKey ed25519.PublicKey) error
}

// endorsementContext separates endorsements from every other signature the
// identity key makes.
const endorsementContext = "tarzan-transport-cert-v1"

// EndorsementMessage is what an identity key signs to endorse certKey; a
// node that keeps its identity key to itself signs it with its own signer.
func EndorsementMessage(certKey ed25519.PublicKey) []byte { return endorsementMessage(certKey) }

func endorsementMessage(certKey ed25519.PublicKey) []byte {
	return append([]byte(endorsementContext), certKey...)
}

// Endorse signs certKey with the identity key: the signature covers
// "tarzan-transport-cert-v1" || certKey. The core calls it; transports
// only verify.
func Endorse(identity ed25519.PrivateKey, certKey ed25519.PublicKey) []byte {
	return ed25519.Sign(identity, endorsementMessage(certKey))
}

// VerifyEndorsement reports whether endorsement is identityKey's signature
// over certKey as made by Endorse. Malformed keys do not verify.
func VerifyEndorsement(identityKey ed25519.PublicKey, certKey ed25519.PublicKey, endorsement []byte) bool {
	if len(identityKey) != ed25519.PublicKeySize || len(certKey) != ed25519.PublicKeySize ||
		len(endorsement) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(identityKey, endorsementMessage(certKey), endorsement)
}
