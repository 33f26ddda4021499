package transportplugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transportplugin/internal/transportpb"
)

// The optional interfaces transport.ParamsProvider,
// transport.PeerParamsSetter and transport.AdvertiseSetter across the
// process boundary. Unlike credentials (which a transport without them
// may ignore), a caller decides by type assertion whether a transport
// has them, and the conformance suite tests what a transport claims; so
// the child names in its Configure answer the interfaces its transport
// implements, and Launch returns a host transport whose method set
// holds exactly those. A child from before these RPCs names none and
// gets a host transport without them, as before.

// Interface names in ConfigureResponse.interfaces.
const (
	ifaceParams     = "params"
	ifacePeerParams = "peer_params"
	ifaceAdvertise  = "advertise"
)

// paramsTimeout bounds Params, which the core calls while it signs its
// descriptor: a slow child must not hold that up.
const paramsTimeout = 2 * time.Second

// interfacesOf lists the optional interfaces t implements (child side).
func interfacesOf(t transport.Transport) []string {
	var out []string
	if _, ok := t.(transport.ParamsProvider); ok {
		out = append(out, ifaceParams)
	}
	if _, ok := t.(transport.PeerParamsSetter); ok {
		out = append(out, ifacePeerParams)
	}
	if _, ok := t.(transport.AdvertiseSetter); ok {
		out = append(out, ifaceAdvertise)
	}
	return out
}

// Params (child side).
func (s *server) Params(context.Context, *transportpb.Empty) (*transportpb.ParamsResponse, error) {
	t, err := s.transport()
	if err != nil {
		return nil, err
	}
	pp, ok := t.(transport.ParamsProvider)
	if !ok {
		return nil, unimplementedErr("transport publishes no parameters")
	}
	return &transportpb.ParamsResponse{Params: pp.Params()}, nil
}

// SetPeerParams (child side).
func (s *server) SetPeerParams(_ context.Context, req *transportpb.SetPeerParamsRequest) (*transportpb.Empty, error) {
	t, err := s.transport()
	if err != nil {
		return nil, err
	}
	ps, ok := t.(transport.PeerParamsSetter)
	if !ok {
		return nil, unimplementedErr("transport takes no peer parameters")
	}
	ap, err := netip.ParseAddrPort(req.GetAddr())
	if err != nil {
		return nil, errors.New("transportplugin: malformed SetPeerParams address")
	}
	return &transportpb.Empty{}, ps.SetPeerParams(ap, req.GetParams())
}

// SetAdvertised (child side).
func (s *server) SetAdvertised(_ context.Context, req *transportpb.SetAdvertisedRequest) (*transportpb.Empty, error) {
	t, err := s.transport()
	if err != nil {
		return nil, err
	}
	as, ok := t.(transport.AdvertiseSetter)
	if !ok {
		return nil, unimplementedErr("transport takes no advertised address")
	}
	ap, err := netip.ParseAddrPort(req.GetAddr())
	if err != nil {
		return nil, errors.New("transportplugin: malformed SetAdvertised address")
	}
	return &transportpb.Empty{}, as.SetAdvertised(ap)
}

// params is ParamsProvider's Params on the host side: the child's answer,
// or the last one it gave while it does not answer (it restarts with the
// same options and state, so what it published stays valid).
func (c *client) params() string {
	rpc, err := c.control()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), paramsTimeout)
		defer cancel()
		var resp *transportpb.ParamsResponse
		if resp, err = rpc.Params(ctx, &transportpb.Empty{}); err == nil {
			c.mu.Lock()
			c.lastParams = resp.GetParams()
			c.mu.Unlock()
			return resp.GetParams()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastParams
}

// setPeerParams is PeerParamsSetter's on the host side; it is remembered
// and handed to every later child.
func (c *client) setPeerParams(addr netip.AddrPort, params string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peerParams[addr] = params
	rpc, err := c.control()
	if err != nil {
		return nil // replayed when the child is back
	}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	_, err = rpc.SetPeerParams(ctx, &transportpb.SetPeerParamsRequest{Addr: addr.String(), Params: params})
	if err != nil && !childGone(err) {
		delete(c.peerParams, addr)
		return fmt.Errorf("transportplugin: set peer params: %w", err)
	}
	return nil
}

// setAdvertised is AdvertiseSetter's on the host side; remembered and
// handed to every later child before its packets move.
func (c *client) setAdvertised(addr netip.AddrPort) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advertised = addr
	rpc, err := c.control()
	if err != nil {
		return nil // replayed when the child is back
	}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	_, err = rpc.SetAdvertised(ctx, &transportpb.SetAdvertisedRequest{Addr: addr.String()})
	if err != nil && !childGone(err) {
		return fmt.Errorf("transportplugin: set advertised address: %w", err)
	}
	return nil
}

// replayParams gives a fresh child the advertised address and the peers'
// parameters the host was given. Caller holds c.mu.
func (c *client) replayParams(ctx context.Context, rpc transportpb.TransportClient) error {
	if c.advertised.IsValid() && c.has(ifaceAdvertise) {
		if _, err := rpc.SetAdvertised(ctx, &transportpb.SetAdvertisedRequest{Addr: c.advertised.String()}); err != nil {
			return fmt.Errorf("set advertised address: %w", err)
		}
	}
	if !c.has(ifacePeerParams) {
		return nil
	}
	for addr, p := range c.peerParams {
		if _, err := rpc.SetPeerParams(ctx, &transportpb.SetPeerParamsRequest{Addr: addr.String(), Params: p}); err != nil {
			// One peer's refused parameters must not keep the transport
			// down; the child refused them the first time too.
			if ctx.Err() != nil {
				return fmt.Errorf("set peer params: %w", err)
			}
		}
	}
	return nil
}

// childGone says whether err means the child died during the call (it
// is restarted and then given what the call carried).
func childGone(err error) bool { return status.Code(err) == codes.Unavailable }

func unimplementedErr(msg string) error { return status.Error(codes.Unimplemented, msg) }

func (c *client) has(iface string) bool { return slices.Contains(c.ifaces, iface) }

// Host-side views of a client, one per set of optional interfaces the
// child's transport implements. Each embeds *client, so it is a
// transport.Transport and a pluginkit.Reporter like the client itself.
type (
	paramsImpl     struct{ c *client }
	peerParamsImpl struct{ c *client }
	advertiseImpl  struct{ c *client }
)

// Params implements transport.ParamsProvider.
func (p paramsImpl) Params() string { return p.c.params() }

// SetPeerParams implements transport.PeerParamsSetter.
func (p peerParamsImpl) SetPeerParams(addr netip.AddrPort, params string) error {
	return p.c.setPeerParams(addr, params)
}

// SetAdvertised implements transport.AdvertiseSetter.
func (p advertiseImpl) SetAdvertised(addr netip.AddrPort) error { return p.c.setAdvertised(addr) }

// view returns c with the optional interfaces its child named.
func (c *client) view() transport.Transport {
	pr, ps, as := c.has(ifaceParams), c.has(ifacePeerParams), c.has(ifaceAdvertise)
	p, s, a := paramsImpl{c}, peerParamsImpl{c}, advertiseImpl{c}
	switch {
	case pr && ps && as:
		return struct {
			*client
			paramsImpl
			peerParamsImpl
			advertiseImpl
		}{c, p, s, a}
	case pr && ps:
		return struct {
			*client
			paramsImpl
			peerParamsImpl
		}{c, p, s}
	case pr && as:
		return struct {
			*client
			paramsImpl
			advertiseImpl
		}{c, p, a}
	case ps && as:
		return struct {
			*client
			peerParamsImpl
			advertiseImpl
		}{c, s, a}
	case pr:
		return struct {
			*client
			paramsImpl
		}{c, p}
	case ps:
		return struct {
			*client
			peerParamsImpl
		}{c, s}
	case as:
		return struct {
			*client
			advertiseImpl
		}{c, a}
	}
	return c
}
