package transportplugin

import (
	"context"
	"net"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transportplugin/internal/transportpb"
)

// Kind is the go-plugin plugin name of transports.
const Kind = "transport"

// grpcPlugin is go-plugin's glue for one protocol version: the child side
// registers the control server, the host side gets a control client.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	factory transport.Factory // child side only
	data    *net.UnixConn     // child side only
	shm     *datachan.Shared  // child side only; nil without shared memory
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	transportpb.RegisterTransportServer(s, newServer(p.factory, p.data, p.shm))
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return transportpb.NewTransportClient(c), nil
}

// versions is what the host accepts; the child offers the same.
func versions(p *grpcPlugin) map[int]plugin.Plugin {
	return map[int]plugin.Plugin{pluginkit.ProtocolVersion: p}
}
