package socks

import (
	"errors"
	"net"
	"net/netip"
	"time"
)

// handshakeTimeout bounds the SOCKS negotiation of one client.
const handshakeTimeout = 30 * time.Second

func (p *Proxy) acceptLoop(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			defer c.Close()
			p.serve(c)
		}()
	}
}

// serve runs one SOCKS5 session: negotiation, then the command.
func (p *Proxy) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	methods, err := readGreeting(c)
	if err != nil {
		return
	}
	auth := "" // isolation identity; "" = no authentication
	switch {
	case containsByte(methods, methodUserPass):
		if _, err := c.Write([]byte{socksVersion, methodUserPass}); err != nil {
			return
		}
		user, pass, err := readUserPass(c)
		if err != nil {
			return
		}
		// Any credentials are accepted: they only name an isolation group.
		if _, err := c.Write([]byte{authVersion, 0x00}); err != nil {
			return
		}
		auth = "\x01" + user + "\x00" + pass
	case containsByte(methods, methodNoAuth):
		if _, err := c.Write([]byte{socksVersion, methodNoAuth}); err != nil {
			return
		}
	default:
		c.Write([]byte{socksVersion, methodNoAcceptable})
		return
	}

	cmd, dst, err := readRequest(c)
	switch {
	case errors.Is(err, errBadAddrType):
		c.Write(reply(repAddrNotSupported, netip.AddrPort{}))
		return
	case errors.Is(err, errBadDomain):
		c.Write(reply(repHostUnreachable, netip.AddrPort{}))
		return
	case err != nil:
		return
	}
	switch cmd {
	case cmdConnect:
		p.connect(c, p.groupKey(auth, dst.hostKey()), dst)
	case cmdUDPAssociate:
		p.associate(c, p.groupKey(auth, "\x00udp"), dst)
	default: // BIND: no listening through a tunnel
		c.Write(reply(repCommandNotSupported, netip.AddrPort{}))
	}
}

// groupKey names the isolation group of a session.
func (p *Proxy) groupKey(auth, dest string) string {
	if p.opts.isolateDest {
		return auth + "\x00" + dest
	}
	return auth
}

func containsByte(b []byte, x byte) bool {
	for _, v := range b {
		if v == x {
			return true
		}
	}
	return false
}
