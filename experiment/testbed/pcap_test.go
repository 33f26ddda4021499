package testbed

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestReadPcapRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewPcapWriter(&buf, snapLen)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 123_456_000)
	a := netip.MustParseAddrPort("10.1.0.1:7700")
	b := netip.MustParseAddrPort("10.2.0.1:7700")
	frame := make([]byte, FrameSize)
	for i := range frame {
		frame[i] = byte(i)
	}
	if err := w.WritePacket(t0, EthernetIPv4(a, b, 17, frame)); err != nil {
		t.Fatal(err)
	}
	srv := netip.MustParseAddrPort("172.31.0.1:9001")
	if err := w.WritePacket(t0.Add(time.Millisecond), EthernetIPv4(netip.MustParseAddrPort("10.2.0.1:40000"), srv, 6, make([]byte, 1000))); err != nil {
		t.Fatal(err)
	}
	// Not IPv4: an ARP frame is skipped.
	arp := make([]byte, 60)
	binary.BigEndian.PutUint16(arp[12:14], 0x0806)
	if err := w.WritePacket(t0, arp); err != nil {
		t.Fatal(err)
	}
	var got []Packet
	st, err := ReadPcap(bytes.NewReader(buf.Bytes()), func(p *Packet) { got = append(got, *p) })
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 3 || st.Packets != 2 || st.Skipped != 1 {
		t.Fatalf("stats %+v, want 3 records, 2 packets, 1 skipped", st)
	}
	u := got[0]
	if u.Proto != 17 || netip.AddrPortFrom(u.Src, u.SrcPort) != a || netip.AddrPortFrom(u.Dst, u.DstPort) != b || u.Payload != FrameSize {
		t.Errorf("udp packet %+v", u)
	}
	if !u.Time.Equal(t0) {
		t.Errorf("time %v, want %v", u.Time, t0)
	}
	// The key hashes the first captured payload bytes: a different
	// frame has a different key.
	var other bytes.Buffer
	w2, _ := NewPcapWriter(&other, snapLen)
	frame[0] ^= 1
	w2.WritePacket(t0, EthernetIPv4(a, b, 17, frame))
	ReadPcap(bytes.NewReader(other.Bytes()), func(p *Packet) {
		if p.Key == u.Key {
			t.Error("two different frames have the same key")
		}
	})
	tc := got[1]
	if tc.Proto != 6 || tc.DstPort != 9001 || tc.Payload != 1000 || tc.Flags != 0x18 {
		t.Errorf("tcp packet %+v: want payload 1000 (from the IP length, not the snap length)", tc)
	}
}

// A pcap written big-endian with nanosecond timestamps, as some tools do.
func TestReadPcapBigEndianNano(t *testing.T) {
	var buf bytes.Buffer
	gh := make([]byte, 24)
	binary.BigEndian.PutUint32(gh[0:4], magicNano)
	binary.BigEndian.PutUint16(gh[4:6], 2)
	binary.BigEndian.PutUint16(gh[6:8], 4)
	binary.BigEndian.PutUint32(gh[16:20], 65535)
	binary.BigEndian.PutUint32(gh[20:24], LinkTypeEthernet)
	buf.Write(gh)
	pkt := EthernetIPv4(netip.MustParseAddrPort("10.1.0.1:7700"), netip.MustParseAddrPort("10.3.0.1:7700"), 17, make([]byte, 100))
	rh := make([]byte, 16)
	binary.BigEndian.PutUint32(rh[0:4], 1000)
	binary.BigEndian.PutUint32(rh[4:8], 999_999_999)
	binary.BigEndian.PutUint32(rh[8:12], uint32(len(pkt)))
	binary.BigEndian.PutUint32(rh[12:16], uint32(len(pkt)))
	buf.Write(rh)
	buf.Write(pkt)
	// A record cut short (a capture killed while writing) ends the file.
	buf.Write(rh)
	buf.Write(pkt[:10])
	n := 0
	_, err := ReadPcap(&buf, func(p *Packet) {
		n++
		if want := time.Unix(1000, 999_999_999); !p.Time.Equal(want) || p.Payload != 100 {
			t.Errorf("packet at %v with %d bytes, want %v and 100", p.Time, p.Payload, want)
		}
	})
	if err != nil || n != 1 {
		t.Fatalf("read %d packets, err %v; want 1, nil", n, err)
	}
}

func TestReadPcapRejects(t *testing.T) {
	if _, err := ReadPcap(bytes.NewReader([]byte("\x0a\x0d\x0d\x0a pcapng block....")), func(*Packet) {}); !errors.Is(err, ErrNotPcap) {
		t.Errorf("pcapng: err %v, want ErrNotPcap", err)
	}
	if _, err := ReadPcap(bytes.NewReader([]byte{1, 2}), func(*Packet) {}); !errors.Is(err, ErrNotPcap) {
		t.Errorf("short file: err %v, want ErrNotPcap", err)
	}
	var buf bytes.Buffer
	gh := make([]byte, 24)
	binary.LittleEndian.PutUint32(gh[0:4], magicMicro)
	binary.LittleEndian.PutUint32(gh[20:24], 113) // Linux cooked capture (-i any)
	buf.Write(gh)
	if _, err := ReadPcap(&buf, func(*Packet) {}); err == nil {
		t.Error("link type 113 accepted")
	}
}

func TestParseSkipsFragmentsAndShortHeaders(t *testing.T) {
	pkt := EthernetIPv4(netip.MustParseAddrPort("10.1.0.1:7700"), netip.MustParseAddrPort("10.3.0.1:7700"), 17, make([]byte, 100))
	var p Packet
	if !parseEthernet(pkt, &p) {
		t.Fatal("a plain UDP packet was not parsed")
	}
	frag := bytes.Clone(pkt)
	binary.BigEndian.PutUint16(frag[14+6:14+8], 10) // fragment offset 80 bytes
	if parseEthernet(frag, &p) {
		t.Error("a later fragment was parsed as UDP")
	}
	if parseEthernet(pkt[:14+20+4], &p) {
		t.Error("a truncated UDP header was parsed")
	}
	vlan := append(append(bytes.Clone(pkt[:12]), 0x81, 0x00, 0, 5), pkt[12:]...)
	if !parseEthernet(vlan, &p) || p.Payload != 100 {
		t.Error("a VLAN-tagged frame was not parsed")
	}
}
