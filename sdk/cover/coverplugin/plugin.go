package coverplugin

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/cover/coverplugin/internal/coverpb"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// Kind is the go-plugin plugin name of cover policies.
const Kind = "cover"

type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	factory cover.Factory // child side only
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	coverpb.RegisterCoverServer(s, &server{factory: p.factory})
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return coverpb.NewCoverClient(c), nil
}

func versions(p *grpcPlugin) map[int]plugin.Plugin {
	return map[int]plugin.Plugin{pluginkit.ProtocolVersion: p}
}

// Serve runs the plugin side of a cover policy: call it from main. It
// blocks until the host ends the process.
func Serve(factory cover.Factory) {
	pluginkit.Serve(Kind, versions(&grpcPlugin{factory: factory}))
}
