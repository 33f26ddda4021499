package adapterplugin

import (
	"testing"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

func TestCodecRoundTrip(t *testing.T) {
	in := []adapter.Packet{{Buf: []byte("hello, and more"), N: 5, Flow: 9}, {Buf: []byte("x"), N: 0, Flow: 1 << 60}}
	msg, k, skipped := encode(nil, in)
	if k != 2 || skipped != 0 {
		t.Fatalf("encode: consumed %d, skipped %d", k, skipped)
	}
	var d decoder
	d.reset(msg)
	for _, want := range in {
		flow, data, err := d.next()
		if err != nil || flow != want.Flow || string(data) != string(want.Buf[:want.N]) {
			t.Fatalf("next = %d %q %v", flow, data, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	msg, _, _ := encode(nil, []adapter.Packet{{Buf: []byte("ip"), N: 2, Flow: 3}})
	f.Add(msg)
	f.Fuzz(func(t *testing.T, b []byte) {
		var d decoder
		if d.reset(b) != nil {
			return
		}
		for i := 0; d.left > 0 && i < 70000; i++ {
			if _, data, err := d.next(); err == nil && len(data) > len(b) {
				t.Fatal("packet longer than the message")
			}
		}
	})
}
