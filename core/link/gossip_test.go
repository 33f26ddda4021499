package link

import (
	"bytes"
	"errors"
	"testing"
)

func TestGossipRoundTrip(t *testing.T) {
	for _, n := range []int{1, 100, MaxGossip} {
		data := bytes.Repeat([]byte{0xab}, n)
		f, err := EncodeGossip(data)
		if err != nil {
			t.Fatal(err)
		}
		if len(f) != FrameSize {
			t.Fatalf("frame is %d bytes", len(f))
		}
		got, err := DecodeGossip(f)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip of %d bytes: %v", n, err)
		}
	}
	if _, err := EncodeGossip(make([]byte, MaxGossip+1)); err == nil {
		t.Fatal("oversized message accepted")
	}
	f, _ := EncodeGossip([]byte("x"))
	f[len(f)-1] = 1
	if _, err := DecodeGossip(f); !errors.Is(err, ErrMalformed) {
		t.Fatalf("non-zero padding: %v", err)
	}
}

func FuzzDecodeGossip(f *testing.F) {
	good, _ := EncodeGossip([]byte("digest"))
	f.Add(good)
	f.Add(make([]byte, FrameSize))
	f.Fuzz(func(t *testing.T, frame []byte) {
		data, err := DecodeGossip(frame)
		if err == nil {
			again, err := EncodeGossip(data)
			if err != nil || !bytes.Equal(again, frame) {
				t.Fatal("decode/encode is not the identity")
			}
		}
	})
}
