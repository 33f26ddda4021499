package onion

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

type testNode struct {
	id        [32]byte
	priv, pub [32]byte
	keys      OnionKeys
}

func newTestNode(t testing.TB, label string) *testNode {
	t.Helper()
	n := &testNode{id: sha256.Sum256([]byte(label))}
	var err error
	n.priv, n.pub, err = GenerateOnionKey(newDetRand(label))
	if err != nil {
		t.Fatal(err)
	}
	if n.keys, err = NewOnionKeys(&n.priv, nil); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestHandshakeAgreesOnKeys(t *testing.T) {
	n := newTestNode(t, "node")
	client, msg, err := NewClientHandshake(nil, n.id, n.pub)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg) != ClientMsgLen {
		t.Fatalf("client message %d bytes", len(msg))
	}
	reply, serverKeys, err := ServerHandshake(nil, n.id, n.keys, msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(reply) != ServerMsgLen {
		t.Fatalf("reply %d bytes", len(reply))
	}
	clientKeys, err := client.Finish(reply)
	if err != nil {
		t.Fatal(err)
	}
	if *clientKeys != *serverKeys {
		t.Fatal("client and server keys differ")
	}
	k := clientKeys
	if k.fwdKey == k.bwdKey || k.fwdBase == k.bwdBase {
		t.Fatal("forward and backward key material are equal")
	}
	if k.fwdBase >= counterMod || k.bwdBase >= counterMod {
		t.Fatalf("counter bases %d %d out of range", k.fwdBase, k.bwdBase)
	}
	firstKeys := clientKeys.clone()
	if _, err := client.Finish(reply); !errors.Is(err, ErrHandshake) {
		t.Fatalf("second Finish: %v", err)
	}
	// The keys work end to end.
	p, r := NewPath(), NewRelay(serverKeys)
	p.AddHop(clientKeys)
	if *clientKeys != (Keys{}) {
		t.Fatal("AddHop left the key material in the caller's Keys")
	}
	cell := make([]byte, CellSize)
	p.Seal(cell, 0, []byte("hi"), nil)
	if local, got, err := r.Forward(cell); err != nil || !local || string(got[:2]) != "hi" {
		t.Fatalf("forward: %v %v", local, err)
	}
	// Each handshake gives fresh keys.
	client2, msg2, _ := NewClientHandshake(nil, n.id, n.pub)
	reply2, _, _ := ServerHandshake(nil, n.id, n.keys, msg2)
	k2, err := client2.Finish(reply2)
	if err != nil || *k2 == *firstKeys {
		t.Fatalf("second handshake: err %v, same keys %v", err, err == nil && *k2 == *firstKeys)
	}
}

func TestHandshakePreviousOnionKey(t *testing.T) {
	old := newTestNode(t, "old")
	n := newTestNode(t, "new")
	n.id = old.id
	for _, keys := range []OnionKeys{
		mustOnionKeys(t, &n.priv, &old.priv),
		{Current: &n.priv, Previous: &old.priv}, // literal: publics recomputed
	} {
		for _, pub := range [][32]byte{n.pub, old.pub} {
			client, msg, _ := NewClientHandshake(nil, n.id, pub)
			reply, sk, err := ServerHandshake(nil, n.id, keys, msg)
			if err != nil {
				t.Fatal(err)
			}
			ck, err := client.Finish(reply)
			if err != nil || *ck != *sk {
				t.Fatalf("finish: %v", err)
			}
		}
	}
	// Without the previous key, a client using it is refused.
	client, msg, _ := NewClientHandshake(nil, n.id, old.pub)
	_ = client
	if _, _, err := ServerHandshake(nil, n.id, mustOnionKeys(t, &n.priv, nil), msg); !errors.Is(err, ErrHandshake) {
		t.Fatalf("retired key: %v", err)
	}
}

func mustOnionKeys(t testing.TB, cur, prev *[32]byte) OnionKeys {
	k, err := NewOnionKeys(cur, prev)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHandshakeRejects(t *testing.T) {
	n := newTestNode(t, "node")
	other := newTestNode(t, "other")

	t.Run("wrong onion key", func(t *testing.T) {
		_, msg, _ := NewClientHandshake(nil, n.id, other.pub)
		if _, _, err := ServerHandshake(nil, n.id, n.keys, msg); !errors.Is(err, ErrHandshake) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("wrong node ID", func(t *testing.T) {
		_, msg, _ := NewClientHandshake(nil, other.id, n.pub)
		if _, _, err := ServerHandshake(nil, n.id, n.keys, msg); !errors.Is(err, ErrHandshake) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("server without the private key", func(t *testing.T) {
		// An impostor that answers for n with its own key cannot produce auth.
		client, msg, _ := NewClientHandshake(nil, n.id, n.pub)
		forged := bytes.Clone(msg)
		copy(forged[32:64], other.pub[:])
		reply, _, err := ServerHandshake(nil, n.id, other.keys, forged)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Finish(reply); !errors.Is(err, ErrHandshake) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("tampered reply", func(t *testing.T) {
		client, msg, _ := NewClientHandshake(nil, n.id, n.pub)
		reply, _, _ := ServerHandshake(nil, n.id, n.keys, msg)
		for pos := range ServerMsgLen {
			bad := bytes.Clone(reply)
			bad[pos] ^= 1 << (pos % 8)
			if _, err := client.Finish(bad); !errors.Is(err, ErrHandshake) {
				t.Fatalf("flip at %d: %v", pos, err)
			}
		}
		if _, err := client.Finish(reply); err != nil {
			t.Fatalf("genuine reply after forgeries: %v", err)
		}
	})
	t.Run("tampered client message", func(t *testing.T) {
		client, msg, _ := NewClientHandshake(nil, n.id, n.pub)
		bad := bytes.Clone(msg)
		bad[70] ^= 4 // X
		reply, _, err := ServerHandshake(nil, n.id, n.keys, bad)
		if err == nil {
			if _, err := client.Finish(reply); !errors.Is(err, ErrHandshake) {
				t.Fatalf("got %v", err)
			}
		}
	})
	t.Run("low-order points", func(t *testing.T) {
		var zero [32]byte
		if _, _, err := NewClientHandshake(nil, n.id, zero); !errors.Is(err, ErrHandshake) {
			t.Fatalf("zero onion key: %v", err)
		}
		_, msg, _ := NewClientHandshake(nil, n.id, n.pub)
		clear(msg[64:96])
		if _, _, err := ServerHandshake(nil, n.id, n.keys, msg); !errors.Is(err, ErrHandshake) {
			t.Fatalf("zero X: %v", err)
		}
		client, msg, _ := NewClientHandshake(nil, n.id, n.pub)
		reply, _, _ := ServerHandshake(nil, n.id, n.keys, msg)
		clear(reply[:32])
		if _, err := client.Finish(reply); !errors.Is(err, ErrHandshake) {
			t.Fatalf("zero Y: %v", err)
		}
	})
	t.Run("sizes", func(t *testing.T) {
		if _, _, err := ServerHandshake(nil, n.id, n.keys, make([]byte, ClientMsgLen-1)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("short message: %v", err)
		}
		client, _, _ := NewClientHandshake(nil, n.id, n.pub)
		if _, err := client.Finish(make([]byte, ServerMsgLen+1)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("long reply: %v", err)
		}
		if _, err := NewOnionKeys(nil, nil); !errors.Is(err, ErrMalformed) {
			t.Fatalf("no current key: %v", err)
		}
	})
}
