package adapterplugin

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adapterplugin/internal/adapterpb"
	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// Kind is the go-plugin plugin name of IP adapters.
const Kind = "adapter"

type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	factory adapter.Factory  // child side only
	data    *net.UnixConn    // child side only
	shm     *datachan.Shared // child side only; nil without shared memory
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	adapterpb.RegisterAdapterServer(s, newServer(p.factory, p.data, p.shm))
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return adapterpb.NewAdapterClient(c), nil
}

func versions(p *grpcPlugin) map[int]plugin.Plugin {
	return map[int]plugin.Plugin{pluginkit.ProtocolVersion: p}
}

// Serve runs the plugin side of an IP adapter: call it from main. It
// blocks until the host ends the process, and exits with a message if the
// process was not started by a Tarzan node. It makes pluginkit.Logger the
// process's slog default, so that an adapter that logs through
// slog.Default (as the shipped ones do, in process or not) reaches the
// node's log at its level, not as an unparsed stderr line.
func Serve(factory adapter.Factory) {
	data, err := datachan.OpenChild()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shm, err := datachan.OpenChildShm(data)
	if err != nil { // the socket framing still works
		fmt.Fprintln(os.Stderr, "adapterplugin: not using shared memory:", err)
		shm = nil
	}
	slog.SetDefault(pluginkit.Logger())
	pluginkit.Serve(Kind, versions(&grpcPlugin{factory: factory, data: data, shm: shm}))
}
