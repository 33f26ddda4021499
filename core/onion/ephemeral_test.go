package onion

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"testing"
)

// Keys made ahead of time (NewEphemeral) give the same handshake as the
// ones made inside it: the client's X and the server's Y are exactly
// the prepared keys' public keys, and both sides agree.
func TestHandshakeWithPreparedKeys(t *testing.T) {
	n := newTestNode(t, "prepared")
	x, err := NewEphemeral(nil)
	if err != nil {
		t.Fatal(err)
	}
	y, err := NewEphemeral(nil)
	if err != nil {
		t.Fatal(err)
	}
	client, msg, err := NewClientHandshakeKey(x, n.id, n.pub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg[64:96], x.PublicKey().Bytes()) {
		t.Error("the client message does not carry the prepared key's public key")
	}
	reply, serverKeys, err := ServerHandshakeKey(y, n.id, n.keys, msg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(reply[:32], y.PublicKey().Bytes()) {
		t.Error("the reply does not carry the prepared key's public key")
	}
	clientKeys, err := client.Finish(reply)
	if err != nil {
		t.Fatal(err)
	}
	if *clientKeys != *serverKeys {
		t.Fatal("client and server keys differ")
	}
}

func TestPreparedKeyRejected(t *testing.T) {
	n := newTestNode(t, "prepared")
	p256, err := ecdh.P256().GenerateKey(newDetRand("p256"))
	if err != nil {
		t.Fatal(err)
	}
	_, msg, err := NewClientHandshake(nil, n.id, n.pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*ecdh.PrivateKey{nil, p256} {
		if _, _, err := NewClientHandshakeKey(k, n.id, n.pub); !errors.Is(err, ErrHandshake) {
			t.Errorf("client with key %v: %v, want ErrHandshake", k != nil, err)
		}
		if _, _, err := ServerHandshakeKey(k, n.id, n.keys, msg); !errors.Is(err, ErrHandshake) {
			t.Errorf("server with key %v: %v, want ErrHandshake", k != nil, err)
		}
	}
}
