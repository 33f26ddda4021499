package socks

import (
	"io"
	"net"
	"testing"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
)

// The SOCKS adapter honours the adapter contract. Provoke is a SOCKS5
// client without authentication asking for 192.0.2.1:80: the stack of
// the unauthenticated group (Flow 0) sends the connection's SYN.
func TestConformance(t *testing.T) {
	adaptertest.Run(t, func(t *testing.T) adaptertest.Subject {
		a, err := New(map[string]string{"listen": "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		return adaptertest.Subject{Adapter: a, Provoke: func(t *testing.T, a adapter.Adapter) uint64 {
			c, err := net.Dial("tcp", a.(*Proxy).Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			reply := make([]byte, 2)
			if _, err := c.Write([]byte{5, 1, 0}); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, reply); err != nil || reply[1] != 0 {
				t.Fatalf("SOCKS greeting: % x, %v", reply, err)
			}
			if _, err := c.Write([]byte{5, 1, 0, 1, 192, 0, 2, 1, 0, 80}); err != nil {
				t.Fatal(err)
			}
			return 0
		}}
	})
}
