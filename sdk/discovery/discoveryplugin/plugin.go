package discoveryplugin

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoveryplugin/internal/discoverypb"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// Kind is the go-plugin plugin name of discovery backends.
const Kind = "discovery"

type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	factory discovery.Factory // child side only
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	discoverypb.RegisterDiscoveryServer(s, &server{factory: p.factory})
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return discoverypb.NewDiscoveryClient(c), nil
}

func versions(p *grpcPlugin) map[int]plugin.Plugin {
	return map[int]plugin.Plugin{pluginkit.ProtocolVersion: p}
}

// Serve runs the plugin side of a discovery backend: call it from main.
// It blocks until the host ends the process.
func Serve(factory discovery.Factory) {
	pluginkit.Serve(Kind, versions(&grpcPlugin{factory: factory}))
}
