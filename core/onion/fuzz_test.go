package onion

import (
	"bytes"
	"testing"
)

// FuzzForward feeds arbitrary cells to a relay. Genuine cells are seeds so
// the fuzzer starts from inputs that pass the MAC.
func FuzzForward(f *testing.F) {
	c := newCircuit(f, 2)
	for j := range 2 {
		cell := make([]byte, CellSize)
		c.path.Seal(cell, j, []byte("seed"), nil)
		f.Add(cell)
	}
	f.Add([]byte{})
	f.Add(make([]byte, CellSize))
	f.Fuzz(func(t *testing.T, cell []byte) {
		r := NewRelay(c.keys[0].clone())
		in := bytes.Clone(cell)
		local, payload, err := r.Forward(cell)
		if err != nil {
			if !bytes.Equal(in, cell) {
				t.Fatal("rejected cell was modified")
			}
			return
		}
		if local && len(payload) != PayloadSize {
			t.Fatalf("payload %d bytes", len(payload))
		}
		if _, _, err := r.Forward(in); err == nil {
			t.Fatal("accepted the same cell twice")
		}
	})
}

// FuzzPathOpen feeds arbitrary backward cells to a 3-hop path.
func FuzzPathOpen(f *testing.F) {
	c := newCircuit(f, 3)
	for j := range 3 {
		f.Add(c.backwardFrom(f, j, []byte("seed")))
	}
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, cell []byte) {
		p := NewPath()
		for _, k := range c.keys {
			p.AddHop(k.clone())
		}
		in := bytes.Clone(cell)
		hop, payload, err := p.Open(cell)
		if err != nil {
			return
		}
		if hop < 0 || hop >= 3 || len(payload) != PayloadSize {
			t.Fatalf("hop %d payload %d bytes", hop, len(payload))
		}
		if _, _, err := p.Open(in); err == nil {
			t.Fatal("opened the same cell twice")
		}
	})
}

func FuzzDecodeRelay(f *testing.F) {
	buf := make([]byte, PayloadSize)
	p, _ := EncodeRelay(buf, CmdData, []byte("hello"))
	f.Add(p)
	f.Add([]byte{2, 0, 0, 128})
	f.Add(EncodeExtend([32]byte{1}, make([]byte, ClientMsgLen)))
	f.Fuzz(func(t *testing.T, payload []byte) {
		cmd, data, err := DecodeRelay(payload)
		if err != nil {
			return
		}
		if len(data) > MaxData {
			t.Fatalf("data of %d bytes", len(data))
		}
		again, err := EncodeRelay(make([]byte, PayloadSize), cmd, data)
		if err != nil {
			t.Fatal(err)
		}
		cmd2, data2, err := DecodeRelay(again)
		if err != nil || cmd2 != cmd || !bytes.Equal(data, data2) {
			t.Fatal("re-encoding changed the payload")
		}
		// The bodies must not panic either.
		DecodeExtend(data)
		DecodeExtended(data)
		DecodeExtendFailed(data)
		DecodePing(data)
	})
}

func FuzzServerHandshake(f *testing.F) {
	n := newTestNode(f, "fuzz-server")
	_, msg, _ := NewClientHandshake(newDetRand("fuzz-x"), n.id, n.pub)
	f.Add(msg)
	f.Add(make([]byte, ClientMsgLen))
	f.Fuzz(func(t *testing.T, msg []byte) {
		reply, k, err := ServerHandshake(newDetRand("fuzz-y"), n.id, n.keys, msg)
		if err == nil && (len(reply) != ServerMsgLen || k == nil) {
			t.Fatal("success without a reply and keys")
		}
	})
}

func FuzzClientFinish(f *testing.F) {
	n := newTestNode(f, "fuzz-client")
	_, msg, _ := NewClientHandshake(newDetRand("fuzz-x"), n.id, n.pub)
	reply, _, _ := ServerHandshake(newDetRand("fuzz-y"), n.id, n.keys, msg)
	f.Add(reply)
	f.Add(make([]byte, ServerMsgLen))
	f.Fuzz(func(t *testing.T, reply []byte) {
		client, _, err := NewClientHandshake(newDetRand("fuzz-x"), n.id, n.pub)
		if err != nil {
			t.Fatal(err)
		}
		k, err := client.Finish(reply)
		if err == nil && k == nil {
			t.Fatal("success without keys")
		}
	})
}
