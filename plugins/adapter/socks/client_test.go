package socks

// A minimal SOCKS5 client for tests: it reports the raw reply code.

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

type socksClient struct {
	server     netip.AddrPort
	user, pass string // empty user: offer no authentication
}

// request negotiates and sends cmd for target ("host:port" or an
// address), returning the connection and the reply code.
func (sc socksClient) request(cmd byte, target string) (net.Conn, byte, netip.AddrPort, error) {
	c, err := net.DialTimeout("tcp", sc.server.String(), 5*time.Second)
	if err != nil {
		return nil, 0, netip.AddrPort{}, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fail := func(err error) (net.Conn, byte, netip.AddrPort, error) {
		c.Close()
		return nil, 0, netip.AddrPort{}, err
	}
	method := byte(methodNoAuth)
	if sc.user != "" {
		method = methodUserPass
	}
	if _, err := c.Write([]byte{5, 1, method}); err != nil {
		return fail(err)
	}
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil {
		return fail(err)
	}
	if sel[1] != method {
		return fail(fmt.Errorf("server chose method %#x", sel[1]))
	}
	if sc.user != "" {
		msg := append([]byte{1, byte(len(sc.user))}, sc.user...)
		msg = append(append(msg, byte(len(sc.pass))), sc.pass...)
		if _, err := c.Write(msg); err != nil {
			return fail(err)
		}
		if _, err := io.ReadFull(c, sel[:]); err != nil || sel[1] != 0 {
			return fail(fmt.Errorf("auth failed: %v %x", err, sel))
		}
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return fail(err)
	}
	var p uint16
	fmt.Sscan(port, &p)
	req := []byte{5, cmd, 0}
	if a, err := netip.ParseAddr(host); err == nil {
		req = appendAddr(req, netip.AddrPortFrom(a, p))
	} else {
		req = append(append(req, atypDomain, byte(len(host))), host...)
		req = binary.BigEndian.AppendUint16(req, p)
	}
	if _, err := c.Write(req); err != nil {
		return fail(err)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fail(fmt.Errorf("%w: %v", errShortReply, err))
	}
	bnd, err := readAddr(c, hdr[3])
	if err != nil {
		return fail(err)
	}
	c.SetDeadline(time.Time{})
	return c, hdr[1], netip.AddrPortFrom(bnd.addr, bnd.port), nil
}
