package pnat

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

const (
	dnsTTL        = 60
	dnsMaxAnswers = 8 // keeps a UDP answer well under 512 bytes
	dnsTimeout    = 5 * time.Second
)

// serveDNSUDP answers queries on one client 5-tuple until the flow ends.
func (e *Exit) serveDNSUDP(f *flow, c net.Conn) {
	buf := make([]byte, 1500)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		f.touch()
		if resp := e.answerDNS(buf[:n]); resp != nil {
			c.Write(resp)
		}
	}
}

// serveDNSTCP answers length-prefixed queries (RFC 1035 §4.2.2).
func (e *Exit) serveDNSTCP(f *flow, c net.Conn) {
	var hdr [2]byte
	buf := make([]byte, 65535)
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		q := buf[:binary.BigEndian.Uint16(hdr[:])]
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		f.touch()
		resp := e.answerDNS(q)
		if resp == nil {
			return
		}
		out := append(binary.BigEndian.AppendUint16(nil, uint16(len(resp))), resp...)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// answerDNS resolves one query with the exit's resolver. It returns nil
// for input that is not a query at all.
func (e *Exit) answerDNS(query []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil
	}
	e.stats.dnsQueries.Add(1)
	resp := dnsmessage.Header{
		ID: h.ID, Response: true, OpCode: h.OpCode,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true,
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 {
		resp.RCode = dnsmessage.RCodeFormatError
		return e.buildDNS(resp, nil, nil)
	}
	q := qs[0]
	if h.OpCode != 0 || q.Class != dnsmessage.ClassINET || (q.Type != dnsmessage.TypeA && q.Type != dnsmessage.TypeAAAA) {
		resp.RCode = dnsmessage.RCodeNotImplemented
		return e.buildDNS(resp, &q, nil)
	}
	network := "ip4"
	if q.Type == dnsmessage.TypeAAAA {
		network = "ip6"
	}
	name := strings.TrimSuffix(q.Name.String(), ".")
	ctx, cancel := context.WithTimeout(e.ctx, dnsTimeout)
	defer cancel()
	addrs, err := e.resolver.LookupNetIP(ctx, network, name)
	if err != nil {
		resp.RCode = dnsmessage.RCodeServerFailure
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			resp.RCode = dnsmessage.RCodeNameError
			// "Not found" for one family may only mean no records of
			// that type: the name exists if the other family resolves.
			if _, err2 := e.resolver.LookupNetIP(ctx, "ip", name); err2 == nil {
				resp.RCode = dnsmessage.RCodeSuccess
			}
		}
	}
	return e.buildDNS(resp, &q, addrs)
}

func (e *Exit) buildDNS(h dnsmessage.Header, q *dnsmessage.Question, addrs []netip.Addr) []byte {
	if h.RCode != dnsmessage.RCodeSuccess {
		e.stats.dnsFailures.Add(1)
	}
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), h)
	b.EnableCompression()
	if q != nil {
		if b.StartQuestions() != nil || b.Question(*q) != nil {
			return nil
		}
	}
	if b.StartAnswers() != nil {
		return nil
	}
	n := 0
	for _, a := range addrs {
		if n == dnsMaxAnswers {
			break
		}
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: dnsTTL}
		var err error
		switch {
		case q.Type == dnsmessage.TypeA && a.Unmap().Is4():
			err = b.AResource(rh, dnsmessage.AResource{A: a.Unmap().As4()})
		case q.Type == dnsmessage.TypeAAAA && a.Is6() && !a.Is4In6():
			err = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		default:
			continue
		}
		if err != nil {
			return nil
		}
		n++
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}
