package descriptor

import (
	"errors"
	"strings"
	"testing"
)

const obfs4Params = "cert=F+qVb+1RTsotcBSK9Gsi/bqA3ea4nH/Y6TffAaTFbnn1nZe0vfCQh3lfLKxDR3s947WVPg,iat-mode=0"

func TestTransportParamsRoundTrip(t *testing.T) {
	id := testIdentity(t, 1)
	d := sample()
	d.Addrs[1].Params = obfs4Params
	b := signed(t, d, id)
	checkVector(t, "transport-params.hex", "Descriptor v1 with transport parameters (type 0x10) for address 1:\n"+obfs4Params+vectorInputs, b)
	got, err := Parse(b, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Addrs[0].Params != "" || got.Addrs[1].Params != obfs4Params {
		t.Fatalf("params %q %q", got.Addrs[0].Params, got.Addrs[1].Params)
	}
	// Without parameters the encoding has no 0x10 field (older vectors hold).
	plain := signed(t, sample(), id)
	if len(plain) >= len(b) {
		t.Fatal("parameters did not add a field")
	}
}

func TestTransportParamsRejected(t *testing.T) {
	id := testIdentity(t, 1)
	for _, p := range []string{strings.Repeat("a", MaxTransportParams+1), "cert=a b", "cert=\x01", "é=1"} {
		d := sample()
		d.Addrs[0].Params = p
		if _, err := d.Sign(id); !errors.Is(err, ErrMalformed) {
			t.Errorf("Sign with params %.20q: %v; want ErrMalformed", p, err)
		}
	}
	// Decoding: an index past the addresses, out of order, empty.
	for _, v := range [][]byte{{5, 0, 1, 'x'}, {1, 0, 1, 'x', 0, 0, 1, 'y'}, {0, 0, 0}, {}} {
		d := &Descriptor{Addrs: sample().Addrs}
		for i := range d.Addrs {
			d.Addrs[i].Params = ""
		}
		if err := d.decodeParams(v); !errors.Is(err, ErrMalformed) {
			t.Errorf("decodeParams(%x): %v; want ErrMalformed", v, err)
		}
	}
}
