package stackgroup

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Name resolution through the tunnel, with a cache per isolation group.
//
// A name is looked up with A and AAAA queries (as the stack has IPv4 and
// IPv6 addresses) to the group's in-tunnel resolver addresses, over UDP
// (TCP when the answer is truncated); the exit answers them. Nothing is
// ever asked of this machine's resolver, hosts file or search domains.
//
// The cache belongs to one Stack, so one isolation group: it is created
// empty with the group's stack and dropped with it, and no answer is ever
// seen by another group (D28). Within a group every connection already
// shares the tunnel and so the exit, which sees the group's lookups
// anyway; a cached answer only spares a repeat of a query that exit has
// answered. An entry lives for the answer's TTL, at most MaxTTL (so an
// answer outlives the exit that gave it by at most that long if the
// group's tunnel changes exits), and is not kept at all for a TTL of 0,
// a failure or a name that does not exist. The cache holds at most
// CacheSize names; when full, the entry that expires first goes.

const (
	// MaxTTL caps how long an answer is reused. The exits' resolver
	// (pnat) answers with 60 s.
	MaxTTL = 60 * time.Second
	// CacheSize bounds the names cached per group.
	CacheSize = 256
	// dnsTimeout bounds one query to one resolver.
	dnsTimeout = 5 * time.Second
)

type resolver struct {
	st      *Stack
	servers []netip.Addr
	now     func() time.Time // time.Now; tests replace it

	mu    sync.Mutex
	cache map[string]cacheEntry

	queries atomic.Uint64 // lookups that went through the tunnel
	hits    atomic.Uint64 // lookups answered from the cache
}

type cacheEntry struct {
	addrs   []netip.Addr
	expires time.Time
}

func newResolver(st *Stack, servers []netip.Addr) *resolver {
	return &resolver{st: st, servers: servers, now: time.Now, cache: map[string]cacheEntry{}}
}

// DNSStats returns how many lookups went through the tunnel and how many
// the cache answered.
func (s *Stack) DNSStats() (queries, hits uint64) {
	return s.dns.queries.Load(), s.dns.hits.Load()
}

// LookupHost returns host's addresses, IPv4 first, asking through the
// tunnel unless the group's cache has a live answer. An IP address is
// returned as it is.
func (s *Stack) LookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	return s.dns.lookup(ctx, host)
}

func (r *resolver) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	key := strings.ToLower(strings.TrimSuffix(host, "."))
	notFound := &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	if key == "" || len(key) > 253 || (!r.st.V4.IsValid() && !r.st.V6.IsValid()) {
		return nil, notFound
	}
	if addrs, ok := r.cached(key); ok {
		r.hits.Add(1)
		return addrs, nil
	}
	r.queries.Add(1)
	name, err := dnsmessage.NewName(key + ".")
	if err != nil {
		return nil, notFound
	}
	type result struct {
		addrs []netip.Addr
		ttl   uint32
		err   error
	}
	var types []dnsmessage.Type
	if r.st.V4.IsValid() {
		types = append(types, dnsmessage.TypeA)
	}
	if r.st.V6.IsValid() {
		types = append(types, dnsmessage.TypeAAAA)
	}
	lanes := make([]chan result, len(types))
	for i, t := range types {
		lanes[i] = make(chan result, 1)
		go func() {
			a, ttl, err := r.query(ctx, name, t)
			lanes[i] <- result{a, ttl, err}
		}()
	}
	var addrs []netip.Addr
	var firstErr error
	ttl := uint32(MaxTTL / time.Second)
	for _, l := range lanes {
		res := <-l
		if res.err != nil {
			if firstErr == nil {
				firstErr = res.err
			}
			continue
		}
		if len(res.addrs) > 0 { // an empty answer (no such records) has no TTL of its own
			addrs = append(addrs, res.addrs...) // A first, then AAAA
			ttl = min(ttl, res.ttl)
		}
	}
	if len(addrs) == 0 {
		if firstErr == nil {
			firstErr = notFound
		}
		var de *net.DNSError
		if errors.As(firstErr, &de) {
			de.Name = host
		}
		return nil, firstErr
	}
	if firstErr == nil && ttl > 0 {
		r.store(key, addrs, time.Duration(ttl)*time.Second)
	}
	return addrs, nil
}

func (r *resolver) cached(key string) ([]netip.Addr, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.cache[key]
	if !ok {
		return nil, false
	}
	if !r.now().Before(e.expires) {
		delete(r.cache, key)
		return nil, false
	}
	return append([]netip.Addr(nil), e.addrs...), true
}

func (r *resolver) store(key string, addrs []netip.Addr, ttl time.Duration) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.cache[key]; !ok && len(r.cache) >= CacheSize {
		var victim string
		var first time.Time
		for k, e := range r.cache {
			if !now.Before(e.expires) {
				delete(r.cache, k)
				continue
			}
			if victim == "" || e.expires.Before(first) {
				victim, first = k, e.expires
			}
		}
		if len(r.cache) >= CacheSize {
			delete(r.cache, victim)
		}
	}
	r.cache[key] = cacheEntry{addrs: addrs, expires: now.Add(min(ttl, MaxTTL))}
}

// cacheLen is the number of cached names (for tests).
func (r *resolver) cacheLen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cache)
}

var errNoServer = errors.New("no DNS server answered")

// query asks each server in turn (twice round) for name's records of
// type t and returns the addresses and their smallest TTL. A name that
// does not exist, or has no such records, is an answer (no addresses),
// not an error to retry.
func (r *resolver) query(ctx context.Context, name dnsmessage.Name, t dnsmessage.Type) ([]netip.Addr, uint32, error) {
	var last error = errNoServer
	for range 2 {
		for _, srv := range r.servers {
			if err := ctx.Err(); err != nil {
				return nil, 0, &net.DNSError{Err: err.Error(), Name: name.String(), IsTimeout: errors.Is(err, context.DeadlineExceeded)}
			}
			msg, err := r.exchange(ctx, srv, name, t)
			if err != nil {
				last = &net.DNSError{Err: err.Error(), Name: name.String(), Server: srv.String(), IsTimeout: isTimeout(err)}
				continue
			}
			addrs, ttl, err := parseAnswer(msg, name, t)
			if err != nil {
				last = err
				if de, ok := err.(*net.DNSError); ok && de.IsNotFound {
					return nil, 0, err
				}
				continue
			}
			return addrs, ttl, nil
		}
	}
	return nil, 0, last
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// exchange sends one query to srv:53 through the stack, over UDP, and
// over TCP if the UDP answer was truncated.
func (r *resolver) exchange(ctx context.Context, srv netip.Addr, name dnsmessage.Name, t dnsmessage.Type) (*dnsmessage.Message, error) {
	id := uint16(rand.Uint32())
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: name, Type: t, Class: dnsmessage.ClassINET}},
	}
	req, err := q.Pack()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	dl, _ := ctx.Deadline()
	ap := netip.AddrPortFrom(srv, 53)

	c, err := r.st.DialUDP(ap)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	c.SetDeadline(dl)
	msg, err := udpRoundTrip(c, req, id, q.Questions[0])
	c.Close()
	if err != nil || !msg.Truncated {
		return msg, err
	}
	tc, err := r.st.DialTCP(ctx, ap)
	if err != nil {
		return nil, err
	}
	defer tc.Close()
	stopTCP := context.AfterFunc(ctx, func() { tc.SetDeadline(time.Now()) })
	defer stopTCP()
	tc.SetDeadline(dl)
	return tcpRoundTrip(tc, req, id, q.Questions[0])
}

func udpRoundTrip(c net.Conn, req []byte, id uint16, q dnsmessage.Question) (*dnsmessage.Message, error) {
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	b := make([]byte, 1232)
	for {
		n, err := c.Read(b)
		if err != nil {
			return nil, err
		}
		var m dnsmessage.Message
		if m.Unpack(b[:n]) != nil || !matches(&m, id, q) {
			continue // not the answer to this query: keep waiting
		}
		return &m, nil
	}
}

func tcpRoundTrip(c net.Conn, req []byte, id uint16, q dnsmessage.Question) (*dnsmessage.Message, error) {
	b := make([]byte, 2+len(req))
	binary.BigEndian.PutUint16(b, uint16(len(req)))
	copy(b[2:], req)
	if _, err := c.Write(b); err != nil {
		return nil, err
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, err
	}
	resp := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, resp); err != nil {
		return nil, err
	}
	var m dnsmessage.Message
	if err := m.Unpack(resp); err != nil {
		return nil, err
	}
	if !matches(&m, id, q) {
		return nil, errors.New("DNS answer over TCP does not match the query")
	}
	return &m, nil
}

func matches(m *dnsmessage.Message, id uint16, q dnsmessage.Question) bool {
	return m.Response && m.ID == id && len(m.Questions) == 1 &&
		m.Questions[0].Type == q.Type && m.Questions[0].Class == q.Class &&
		strings.EqualFold(m.Questions[0].Name.String(), q.Name.String())
}

// parseAnswer returns the addresses of type t in m and their smallest
// TTL (CNAMEs on the way count too). A name that does not exist is a
// *net.DNSError with IsNotFound; a name without such records gives no
// addresses and no error.
func parseAnswer(m *dnsmessage.Message, name dnsmessage.Name, t dnsmessage.Type) ([]netip.Addr, uint32, error) {
	switch m.RCode {
	case dnsmessage.RCodeSuccess:
	case dnsmessage.RCodeNameError:
		return nil, 0, &net.DNSError{Err: "no such host", Name: name.String(), IsNotFound: true}
	default:
		return nil, 0, &net.DNSError{Err: "server misbehaving: " + m.RCode.String(), Name: name.String(), IsTemporary: true}
	}
	var addrs []netip.Addr
	ttl := uint32(MaxTTL / time.Second)
	for _, rr := range m.Answers {
		switch b := rr.Body.(type) {
		case *dnsmessage.AResource:
			if t == dnsmessage.TypeA {
				addrs = append(addrs, netip.AddrFrom4(b.A))
				ttl = min(ttl, rr.Header.TTL)
			}
		case *dnsmessage.AAAAResource:
			if t == dnsmessage.TypeAAAA {
				addrs = append(addrs, netip.AddrFrom16(b.AAAA))
				ttl = min(ttl, rr.Header.TTL)
			}
		case *dnsmessage.CNAMEResource:
			ttl = min(ttl, rr.Header.TTL)
		}
	}
	if len(addrs) == 0 {
		ttl = 0 // an empty answer is not cached
	}
	return addrs, ttl, nil
}
