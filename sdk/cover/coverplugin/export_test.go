package coverplugin

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/cover/coverplugin/internal/coverpb"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// ServeWithoutSessions serves factory as a plugin built before sessions
// did: Open, TickSessions and CloseSession answer Unimplemented.
func ServeWithoutSessions(factory cover.Factory) {
	pluginkit.Serve(Kind, map[int]plugin.Plugin{pluginkit.ProtocolVersion: &oldPlugin{factory: factory}})
}

type oldPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	factory cover.Factory
}

// oldServer has only the RPCs of the first protocol.
type oldServer struct {
	coverpb.UnimplementedCoverServer
	s *server
}

func (o oldServer) Configure(ctx context.Context, r *coverpb.ConfigureRequest) (*coverpb.ConfigureResponse, error) {
	return o.s.Configure(ctx, r)
}

func (o oldServer) Tick(ctx context.Context, r *coverpb.TickRequest) (*coverpb.TickResponse, error) {
	return o.s.Tick(ctx, r)
}

func (o oldServer) Close(ctx context.Context, r *coverpb.Empty) (*coverpb.Empty, error) {
	return o.s.Close(ctx, r)
}

func (p *oldPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	coverpb.RegisterCoverServer(s, oldServer{s: &server{factory: p.factory}})
	return nil
}

func (p *oldPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return coverpb.NewCoverClient(c), nil
}
