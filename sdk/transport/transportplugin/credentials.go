package transportplugin

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/netip"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transportplugin/internal/transportpb"
)

// Identity binding across the process boundary. The host side always
// implements transport.CredentialSetter and transport.PeerVerifier; it
// remembers what it was given and hands it to every child generation, so a
// restarted plugin authenticates as before. A plugin whose transport does
// not implement them answers Unimplemented, which the host ignores.

// SetCredentials (child side).
func (s *server) SetCredentials(_ context.Context, req *transportpb.CredentialsRequest) (*transportpb.Empty, error) {
	t, err := s.transport()
	if err != nil {
		return nil, err
	}
	cs, ok := t.(transport.CredentialSetter)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "transport takes no credentials")
	}
	var c transport.Credentials
	copy(c.NodeID[:], req.GetNodeId())
	if len(req.GetCertKey()) != ed25519.PrivateKeySize || len(req.GetIdentityKey()) != ed25519.PublicKeySize {
		return nil, errors.New("transportplugin: malformed credentials")
	}
	c.CertKey = ed25519.PrivateKey(req.GetCertKey())
	c.Endorsement = req.GetEndorsement()
	c.IdentityKey = ed25519.PublicKey(req.GetIdentityKey())
	return &transportpb.Empty{}, cs.SetCredentials(c)
}

// SetPeer (child side).
func (s *server) SetPeer(_ context.Context, req *transportpb.SetPeerRequest) (*transportpb.Empty, error) {
	t, err := s.transport()
	if err != nil {
		return nil, err
	}
	pv, ok := t.(transport.PeerVerifier)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "transport verifies no peers")
	}
	ap, err := netip.ParseAddrPort(req.GetAddr())
	if err != nil || len(req.GetIdentityKey()) != ed25519.PublicKeySize {
		return nil, errors.New("transportplugin: malformed SetPeer")
	}
	return &transportpb.Empty{}, pv.SetPeer(ap, ed25519.PublicKey(req.GetIdentityKey()))
}

func credentialsRequest(c transport.Credentials) *transportpb.CredentialsRequest {
	return &transportpb.CredentialsRequest{
		NodeId: c.NodeID[:], CertKey: c.CertKey, Endorsement: c.Endorsement, IdentityKey: c.IdentityKey,
	}
}

func unimplemented(err error) bool { return status.Code(err) == codes.Unimplemented }

// SetCredentials (host side).
func (c *client) SetCredentials(cr transport.Credentials) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.creds = &cr
	rpc, err := c.control()
	if err != nil {
		return nil // replayed when the child is back
	}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	if _, err := rpc.SetCredentials(ctx, credentialsRequest(cr)); err != nil && !unimplemented(err) {
		return fmt.Errorf("transportplugin: set credentials: %w", err)
	}
	return nil
}

// SetPeer (host side).
func (c *client) SetPeer(addr netip.AddrPort, key ed25519.PublicKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.peers == nil {
		c.peers = map[netip.AddrPort]ed25519.PublicKey{}
	}
	c.peers[addr] = key
	rpc, err := c.control()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	if _, err := rpc.SetPeer(ctx, &transportpb.SetPeerRequest{Addr: addr.String(), IdentityKey: key}); err != nil && !unimplemented(err) {
		return fmt.Errorf("transportplugin: set peer: %w", err)
	}
	return nil
}

// replayIdentity gives a fresh child the credentials and peers the host
// was given. Caller holds c.mu.
func (c *client) replayIdentity(ctx context.Context, rpc transportpb.TransportClient) error {
	if c.creds != nil {
		if _, err := rpc.SetCredentials(ctx, credentialsRequest(*c.creds)); err != nil && !unimplemented(err) {
			return fmt.Errorf("set credentials: %w", err)
		}
	}
	for addr, key := range c.peers {
		if _, err := rpc.SetPeer(ctx, &transportpb.SetPeerRequest{Addr: addr.String(), IdentityKey: key}); err != nil {
			if unimplemented(err) {
				return nil
			}
			return fmt.Errorf("set peer: %w", err)
		}
	}
	return nil
}
