package dtls

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// The certificate a node presents is self-signed by CertKey and carries,
// in a non-critical extension, the node's identity key and its endorsement
// of CertKey:
//
//	extnValue = identity public key (32 bytes) || endorsement (64 bytes)
//
// The DTLS handshake proves possession of CertKey; the endorsement ties
// CertKey to the identity. Names, dates and the issuer mean nothing.

// endorsementOID is a private-use arc for the extension above.
var endorsementOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}

const endorsementExtLen = ed25519.PublicKeySize + ed25519.SignatureSize

// ErrEndorsement is the reason a peer's certificate is refused.
var ErrEndorsement = errors.New("dtls: peer certificate not endorsed by the expected identity")

// identityCert is our side: the certificate to present and the identity
// it speaks for.
type identityCert struct {
	cert     tls.Certificate
	identity ed25519.PublicKey
}

func newIdentityCert(c transport.Credentials) (*identityCert, error) {
	if len(c.CertKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("dtls: credentials: cert key of %d bytes; want %d", len(c.CertKey), ed25519.PrivateKeySize)
	}
	certPub := c.CertKey.Public().(ed25519.PublicKey)
	if !transport.VerifyEndorsement(c.IdentityKey, certPub, c.Endorsement) {
		return nil, errors.New("dtls: credentials: the endorsement does not verify under the identity key")
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, fmt.Errorf("dtls: certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "tarzan"},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{
			Id:    endorsementOID,
			Value: append(append([]byte(nil), c.IdentityKey...), c.Endorsement...),
		}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, certPub, c.CertKey)
	if err != nil {
		return nil, fmt.Errorf("dtls: create certificate: %w", err)
	}
	return &identityCert{
		cert:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: c.CertKey},
		identity: append(ed25519.PublicKey(nil), c.IdentityKey...),
	}, nil
}

// verifyPeer checks the peer's certificate and returns the identity that
// endorses it. want, if non-nil, is the only identity accepted.
func verifyPeer(rawCerts [][]byte, want ed25519.PublicKey) (ed25519.PublicKey, error) {
	if len(rawCerts) == 0 {
		return nil, fmt.Errorf("%w: no certificate", ErrEndorsement)
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEndorsement, err)
	}
	certPub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: certificate key is not Ed25519", ErrEndorsement)
	}
	var ext []byte
	for _, e := range cert.Extensions {
		if e.Id.Equal(endorsementOID) {
			ext = e.Value
		}
	}
	if len(ext) != endorsementExtLen {
		return nil, fmt.Errorf("%w: no endorsement extension", ErrEndorsement)
	}
	identity := ed25519.PublicKey(ext[:ed25519.PublicKeySize])
	if want != nil && !want.Equal(identity) {
		return nil, fmt.Errorf("%w: endorsed by another identity", ErrEndorsement)
	}
	if !transport.VerifyEndorsement(identity, certPub, ext[ed25519.PublicKeySize:]) {
		return nil, fmt.Errorf("%w: bad endorsement signature", ErrEndorsement)
	}
	return append(ed25519.PublicKey(nil), identity...), nil
}
