package main

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transportplugin"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

// childArg makes the re-executed test binary serve the transport, so the
// out-of-process test runs the real go-plugin path without a prior build
// (go-plugin's TestHelperProcess idiom).
const childArg = "xor-test-plugin"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		transportplugin.Serve(New)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var testOptions = map[string]string{"key": "not-a-secret"}

func newXOR(t *testing.T) transport.Transport {
	tr, err := New(testOptions)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestConformance is the one line every transport author should have.
func TestConformance(t *testing.T) {
	transporttest.Run(t, newXOR)
}

// TestConformanceOutOfProcess runs the same suite against the transport
// as a node runs it: a child process behind transportplugin.Launch.
func TestConformanceOutOfProcess(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	transporttest.Run(t, func(t *testing.T) transport.Transport {
		tr, err := transportplugin.Launch(pluginkit.Launcher{Path: exe, Args: []string{childArg}, Name: Name}, testOptions)
		if err != nil {
			t.Fatalf("Launch: %v", err)
		}
		return tr
	})
}

// TestOnTheWire checks that datagrams leave XORed with the key and that
// the caller's buffer is left alone.
func TestOnTheWire(t *testing.T) {
	tr := newXOR(t)
	defer tr.Close()
	if _, err := tr.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	raw, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	msg := []byte("hello, hello, hello")
	orig := bytes.Clone(msg)
	to := raw.LocalAddr().(*net.UDPAddr).AddrPort()
	if err := tr.WriteBatch([]transport.Packet{{Addr: to, Buf: msg, N: len(msg)}}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg, orig) {
		t.Fatal("WriteBatch modified the caller's buffer")
	}
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, _, err := raw.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	key := testOptions["key"]
	want := make([]byte, len(msg))
	for i := range msg {
		want[i] = msg[i] ^ key[i%len(key)]
	}
	if !bytes.Equal(buf[:n], want) {
		t.Fatalf("on the wire %q, want %q", buf[:n], want)
	}
}

func TestOptions(t *testing.T) {
	for _, opts := range []map[string]string{nil, {"key": ""}, {"key": "k", "colour": "blue"}} {
		if _, err := New(opts); err == nil {
			t.Errorf("New(%v) accepted bad options", opts)
		}
	}
}
