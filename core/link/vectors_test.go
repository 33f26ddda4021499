package link

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/link/*.hex from the code")

const vectorDir = "../../testdata/link"

// checkVector compares got with the named vector file, or rewrites it
// under -update. Files hold '#' comment lines and hex (whitespace ignored).
func checkVector(t *testing.T, name, comment string, got []byte) {
	t.Helper()
	path := filepath.Join(vectorDir, name)
	if *update {
		var sb strings.Builder
		for _, l := range strings.Split(strings.TrimSpace(comment), "\n") {
			sb.WriteString("# " + l + "\n")
		}
		h := hex.EncodeToString(got)
		for len(h) > 64 {
			sb.WriteString(h[:64] + "\n")
			h = h[64:]
		}
		sb.WriteString(h + "\n")
		if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with: go test ./core/link -run TestVectors -update)", err)
	}
	var hx strings.Builder
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			hx.WriteString(l)
		}
	}
	want, err := hex.DecodeString(hx.String())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: code no longer reproduces the vector\n got %x\nwant %x", path, got, want)
	}
}

func TestVectors(t *testing.T) {
	a, b := newPeer(t, 1), newPeer(t, 2)
	rand := newDetRand("tarzan-link-vectors")
	common := fmt.Sprintf(`Inputs (PROTOCOL.md §3-§5, protocol v4: Noise prologue %q):
initiator A: identity seed 32×0x01, node ID %s
             link static private 32×0x11, public %x
responder B: identity seed 32×0x02, node ID %s
             link static private 32×0x12, public %x
randomness: ChaCha20 keystream, key "tarzan-link-vectors" zero-padded, nonce 0
            (A's ephemeral is the first 32 bytes, B's the next 32)
now 2026-11-01T12:00:00Z; A's index 0x0a0a0a0a, B's index 0x0b0b0b0b
flags: both messages FRESH (0x01): neither side held a session with the other`,
		Prologue, a.id.ID(), a.static.Public, b.id.ID(), b.static.Public)

	h, initFrame, err := InitiateFlags(a.static, a.id.ID(), b.static.Public, 0x0a0a0a0a, FlagFresh, rand, t0)
	if err != nil {
		t.Fatal(err)
	}
	rb, resp, _, _, err := Respond(b.static, initFrame, 0x0b0b0b0b, rand, t0, admitFlags(a, [12]byte{}, FlagFresh))
	if err != nil {
		t.Fatal(err)
	}
	ia, err := h.Finish(resp, t0)
	if err != nil {
		t.Fatal(err)
	}
	if ia.PeerFlags() != FlagFresh || rb.PeerFlags() != FlagFresh {
		t.Fatalf("flags: A saw %#x, B saw %#x, want FRESH both", ia.PeerFlags(), rb.PeerFlags())
	}
	clock := func() time.Time { return t0 }
	ia.SetClock(clock)
	rb.SetClock(clock)
	checkVector(t, "handshake-init.hex", "Handshake initiation A→B.\n"+common, initFrame)
	checkVector(t, "handshake-resp.hex", "Handshake response B→A.\n"+common, resp)

	dA, _ := ia.Seal(nil, payload(0x01))
	dB, _ := rb.Seal(nil, payload(0x02))
	checkVector(t, "data-a-to-b.hex", "First data frame A→B (counter 0), plaintext 1376×0x01.\n"+common, dA)
	checkVector(t, "data-b-to-a.hex", "First data frame B→A (counter 0), plaintext 1376×0x02.\n"+common, dB)
	if p, err := rb.Open(nil, dA); err != nil || !bytes.Equal(p, payload(1)) {
		t.Fatal("vector A→B does not open")
	}

	var nonce [32]byte
	for i := range nonce {
		nonce[i] = byte(i)
	}
	dcomment := "\nnonce 0x00..0x1f; descriptors: link key = the node's link static public key,\nonion key 0x80..0x9f, udp 127.1.0.1:7070, published 2026-11-01T12:00:00Z, expires +24h, no exit."
	probe, err := EncodeProbe(nonce, testDescriptor(t, a))
	if err != nil {
		t.Fatal(err)
	}
	proof, err := EncodeProof(nonce, a.id.ID(), testDescriptor(t, b), b.id)
	if err != nil {
		t.Fatal(err)
	}
	checkVector(t, "probe.hex", "Probe from A."+dcomment+"\n"+common, probe)
	checkVector(t, "proof.hex", "Proof from B answering A's probe (prober A; sig over tarzan-proof-v2 || nonce || A's ID || B's ID || SHA-256(B's descriptor))."+dcomment+"\n"+common, proof)
}
