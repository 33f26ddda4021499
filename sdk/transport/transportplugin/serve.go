package transportplugin

import (
	"fmt"
	"os"

	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Serve runs the plugin side of a transport: call it from main. It serves
// one transport made by factory and blocks until the host ends the
// process. It exits with a message if the process was not started by a
// Tarzan node.
func Serve(factory transport.Factory) {
	data, err := datachan.OpenChild()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shm, err := datachan.OpenChildShm(data)
	if err != nil { // the socket framing still works
		fmt.Fprintln(os.Stderr, "transportplugin: not using shared memory:", err)
		shm = nil
	}
	pluginkit.Serve(Kind, versions(&grpcPlugin{factory: factory, data: data, shm: shm}))
}
