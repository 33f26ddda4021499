package onion

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/onion vectors from the current code")

const vectorDir = "../../testdata/onion"

// hexBytes marshals as a hex string.
type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }
func (h *hexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	*h = v
	return err
}

// vectorKeys is a hop's handshake output: generation-0 keys and counter
// bases.
type vectorKeys struct {
	Kf, Kb hexBytes
	Bf, Bb uint32
}

func toVectorKeys(k *Keys) vectorKeys {
	return vectorKeys{Kf: bytes.Clone(k.fwdKey[:]), Kb: bytes.Clone(k.bwdKey[:]), Bf: k.fwdBase, Bb: k.bwdBase}
}

// genKey is the raw key of generation g of the chain that starts at k0.
func genKey(k0 []byte, g uint32) hexBytes {
	var k [32]byte
	copy(k[:], k0)
	keys := newGenKeys(&k, false)
	for range g {
		keys = keys.next()
	}
	return bytes.Clone(keys.key[:])
}

type handshakeVector struct {
	Comment         string
	NodeID          hexBytes
	OnionPrivate    hexBytes
	OnionPublic     hexBytes
	ClientEphemeral hexBytes // x: the 32 bytes the client read from rand
	ClientMessage   hexBytes
	ServerEphemeral hexBytes // y: the 32 bytes the server read from rand
	ServerReply     hexBytes
	Keys            vectorKeys
	Kr              hexBytes // the resume key (okm[104:136])
}

// rejoinVector is a rejoin of generation 1 of the hop whose keys are in
// handshake.json (PROTOCOL §6.1).
type rejoinVector struct {
	Comment         string
	Kr              hexBytes
	Gen             uint32
	ClientMessage   hexBytes // ID || B || X_g
	ServerEphemeral hexBytes // y: the 32 bytes the exit read from rand
	ServerReply     hexBytes // Y || auth
	NextPoint       hexBytes // X_{g+1}, the exit's index entry afterwards
}

type forwardVector struct {
	Comment   string
	Hops      []vectorKeys
	Target    int        // 0-based hop the payload is for
	Counters  []uint32   // logical forward counter of each hop 0..Target
	Wire      []uint32   // what each hop reads in its slot: wire(counter, Bf)
	GenKeys   []hexBytes // each hop's forward key of generation (counter−1)/4096
	Payload   hexBytes
	Rand      hexBytes   // the bytes Seal read (padding between payload and filler)
	CellAtHop []hexBytes // the cell as hop i receives it
	Delivered hexBytes   // the payload as the target sees it (PayloadSize bytes)
}

type backwardVector struct {
	Comment       string
	Hops          []vectorKeys
	Origin        int        // 0-based hop that originates
	Counters      []uint32   // logical backward counter each hop 0..Origin uses
	Wire          []uint32   // wire(counter, Bb) in each hop's slot
	GenKeys       []hexBytes // each hop's backward key of generation (counter−1)/4096
	Payload       hexBytes
	Rand          hexBytes   // the bytes Originate read (the tail)
	CellAfterHop  []hexBytes // the cell hop i sends toward the initiator (index = hop)
	OpenedHop     int
	OpenedPayload hexBytes
}

type ratchetVector struct {
	Comment string
	K0      hexBytes
	Next    []hexBytes // generations 1, 2, 3
}

func vectorHopKeys() []*Keys {
	return []*Keys{testKeys("vector/hop0"), testKeys("vector/hop1"), testKeys("vector/hop2")}
}

func readAll(r io.Reader, n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		panic(err)
	}
	return b
}

func makeHandshakeVector(t *testing.T) handshakeVector {
	v := handshakeVector{Comment: "docs/PROTOCOL.md §6: ntor-like handshake; ephemerals are the raw X25519 scalars read from rand"}
	nodeID := [32]byte{}
	copy(nodeID[:], readAll(newDetRand("vector/node-id"), 32))
	priv, pub, err := GenerateOnionKey(newDetRand("vector/onion-key"))
	if err != nil {
		t.Fatal(err)
	}
	v.NodeID, v.OnionPrivate, v.OnionPublic = nodeID[:], priv[:], pub[:]
	v.ClientEphemeral = readAll(newDetRand("vector/x"), 32)
	v.ServerEphemeral = readAll(newDetRand("vector/y"), 32)
	client, msg, err := NewClientHandshake(bytes.NewReader(v.ClientEphemeral), nodeID, pub)
	if err != nil {
		t.Fatal(err)
	}
	reply, sk, err := ServerHandshake(bytes.NewReader(v.ServerEphemeral), nodeID, OnionKeys{Current: &priv}, msg)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := client.Finish(reply)
	if err != nil || *ck != *sk {
		t.Fatalf("vector handshake does not agree: %v", err)
	}
	v.ClientMessage, v.ServerReply, v.Keys, v.Kr = msg, reply, toVectorKeys(ck), bytes.Clone(ck.resume[:])
	return v
}

func makeRejoinVector(t *testing.T) rejoinVector {
	hv := makeHandshakeVector(t)
	v := rejoinVector{Comment: "docs/PROTOCOL.md §6.1: rejoin of generation 1 of the circuit of handshake.json", Kr: hv.Kr, Gen: 1}
	var k Keys
	copy(k.resume[:], hv.Kr)
	var nodeID, pub [32]byte
	copy(nodeID[:], hv.NodeID)
	copy(pub[:], hv.OnionPublic)
	p := NewPath()
	if err := p.AddHop(k.clone()); err != nil {
		t.Fatal(err)
	}
	r := NewRelay(k.clone())
	if err := p.SetAside(0); err != nil {
		t.Fatal(err)
	}
	msg, err := p.RejoinMessage(nodeID, pub)
	if err != nil {
		t.Fatal(err)
	}
	v.ServerEphemeral = readAll(newDetRand("vector/rejoin-y"), 32)
	reply, next, err := r.AcceptRejoin(bytes.NewReader(v.ServerEphemeral), msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Rejoin(reply); err != nil {
		t.Fatal(err)
	}
	v.ClientMessage, v.ServerReply, v.NextPoint = msg, reply, next[:]
	return v
}

func makeForwardVector(t *testing.T) forwardVector {
	keys := vectorHopKeys()
	v := forwardVector{
		Comment: "docs/PROTOCOL.md §7: a 3-hop forward cell for hop 2, as each hop receives it; " +
			"hop 0 is in key generation 2, hop 1 in generation 1, hop 2 in generation 0",
		Target:   2,
		Counters: []uint32{0x2003, 0x1004, 7},
		Payload:  []byte("tarzan forward test vector"),
		Rand:     readAll(newDetRand("vector/forward-rand"), SlotSize*(MaxHops-3)),
	}
	p := NewPath()
	var relays []*Relay
	for i, k := range keys {
		v.Hops = append(v.Hops, toVectorKeys(k))
		v.Wire = append(v.Wire, wireCounter(v.Counters[i], k.fwdBase))
		v.GenKeys = append(v.GenKeys, genKey(k.fwdKey[:], generation(v.Counters[i])))
		r := NewRelay(k.clone())
		r.skipForward(v.Counters[i])
		relays = append(relays, r)
		p.AddHop(k)
		p.skipForward(i, v.Counters[i])
	}
	cell := make([]byte, CellSize)
	if err := p.Seal(cell, v.Target, v.Payload, bytes.NewReader(v.Rand)); err != nil {
		t.Fatal(err)
	}
	for i, r := range relays {
		v.CellAtHop = append(v.CellAtHop, bytes.Clone(cell))
		local, payload, err := r.Forward(cell)
		if err != nil || local != (i == v.Target) {
			t.Fatalf("hop %d: local=%v err=%v", i, local, err)
		}
		if local {
			v.Delivered = bytes.Clone(payload)
		}
	}
	return v
}

func makeBackwardVector(t *testing.T) backwardVector {
	keys := vectorHopKeys()
	v := backwardVector{
		Comment: "docs/PROTOCOL.md §7: a backward cell originated by hop 2 and relayed by hops 1 and 0; " +
			"hop 1 uses the first counter of key generation 1",
		Origin:   2,
		Counters: []uint32{300, 0x1001, 7},
		Payload:  []byte("tarzan backward test vector"),
		Rand:     readAll(newDetRand("vector/backward-rand"), BodySize-PayloadSize),
	}
	p := NewPath()
	relays := make([]*Relay, len(keys))
	for i, k := range keys {
		v.Hops = append(v.Hops, toVectorKeys(k))
		v.Wire = append(v.Wire, wireCounter(v.Counters[i], k.bwdBase))
		v.GenKeys = append(v.GenKeys, genKey(k.bwdKey[:], generation(v.Counters[i])))
		relays[i] = NewRelay(k.clone())
		relays[i].skipBackward(v.Counters[i])
		p.AddHop(k)
		p.skipBackward(i, v.Counters[i])
	}
	cell := make([]byte, CellSize)
	if err := relays[2].Originate(cell, v.Payload, bytes.NewReader(v.Rand)); err != nil {
		t.Fatal(err)
	}
	v.CellAfterHop = make([]hexBytes, 3)
	v.CellAfterHop[2] = bytes.Clone(cell)
	for i := 1; i >= 0; i-- {
		if err := relays[i].Backward(cell); err != nil {
			t.Fatal(err)
		}
		v.CellAfterHop[i] = bytes.Clone(cell)
	}
	hop, payload, err := p.Open(cell)
	if err != nil {
		t.Fatal(err)
	}
	v.OpenedHop, v.OpenedPayload = hop, bytes.Clone(payload)
	return v
}

func makeRatchetVector(t *testing.T) ratchetVector {
	k0 := sha256.Sum256([]byte("vector/ratchet"))
	v := ratchetVector{
		Comment: "docs/PROTOCOL.md §7.3: K_{g+1} = SHA-256(\"tarzan-onion-v2:ratchet\" || K_g)",
		K0:      k0[:],
	}
	for g := uint32(1); g <= 3; g++ {
		v.Next = append(v.Next, genKey(k0[:], g))
	}
	return v
}

func TestVectors(t *testing.T) {
	for name, gen := range map[string]func(*testing.T) any{
		"handshake.json": func(t *testing.T) any { return makeHandshakeVector(t) },
		"rejoin.json":    func(t *testing.T) any { return makeRejoinVector(t) },
		"forward3.json":  func(t *testing.T) any { return makeForwardVector(t) },
		"backward3.json": func(t *testing.T) any { return makeBackwardVector(t) },
		"ratchet.json":   func(t *testing.T) any { return makeRatchetVector(t) },
	} {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(gen(t), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			file := filepath.Join(vectorDir, name)
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -run TestVectors -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("vector %s differs from the code: %s", name, firstDifference(got, want))
			}
		})
	}
}

// firstDifference names the first top-level field whose value differs.
func firstDifference(got, want []byte) string {
	var g, w map[string]json.RawMessage
	if json.Unmarshal(got, &g) != nil || json.Unmarshal(want, &w) != nil {
		return "file is not valid JSON"
	}
	for k, gv := range g {
		if !bytes.Equal(gv, w[k]) {
			return fmt.Sprintf("field %s", k)
		}
	}
	return "fields differ in layout"
}

// The recorded vectors must also be accepted when fed from the file, so an
// independent implementation can rely on them as given.
func TestVectorCellsFromFile(t *testing.T) {
	var fv forwardVector
	readVector(t, "forward3.json", &fv)
	for i, hk := range fv.Hops {
		r := NewRelay(fromVectorKeys(t, hk))
		r.skipForward(fv.Counters[i])
		cell := bytes.Clone(fv.CellAtHop[i])
		local, payload, err := r.Forward(cell)
		if err != nil {
			t.Fatalf("forward at hop %d: %v", i, err)
		}
		switch {
		case local && (i != fv.Target || !bytes.Equal(payload, fv.Delivered)):
			t.Fatalf("hop %d delivered wrongly", i)
		case !local && !bytes.Equal(cell, fv.CellAtHop[i+1]):
			t.Fatalf("hop %d produced a different cell for hop %d", i, i+1)
		}
	}
	var bv backwardVector
	readVector(t, "backward3.json", &bv)
	p := NewPath()
	for i, hk := range bv.Hops {
		p.AddHop(fromVectorKeys(t, hk))
		p.skipBackward(i, bv.Counters[i])
	}
	hop, payload, err := p.Open(bytes.Clone(bv.CellAfterHop[0]))
	if err != nil || hop != bv.OpenedHop || !bytes.Equal(payload, bv.OpenedPayload) {
		t.Fatalf("open: hop %d err %v", hop, err)
	}
}

func readVector(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func fromVectorKeys(t *testing.T, v vectorKeys) *Keys {
	if len(v.Kf) != 32 || len(v.Kb) != 32 {
		t.Fatalf("vector keys of %d and %d bytes", len(v.Kf), len(v.Kb))
	}
	k := &Keys{fwdBase: v.Bf, bwdBase: v.Bb}
	copy(k.fwdKey[:], v.Kf)
	copy(k.bwdKey[:], v.Kb)
	return k
}
