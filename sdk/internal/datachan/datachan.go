// Package datachan creates the Unix SOCK_SEQPACKET socket pair that carries
// packet batches between a host and a plugin child, next to (not through)
// gRPC. A seqpacket socket keeps message boundaries, so one message is one
// batch and neither side needs a stream framer; it is also reliable and
// ordered, unlike a datagram socket, and blocks the writer when the reader
// falls behind, which is the back-pressure we want.
package datachan

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

// EnvFD names the environment variable through which the host tells the
// child which inherited descriptor is its end of the data channel.
const EnvFD = "TARZAN_PLUGIN_DATA_FD"

// childFD is the descriptor number of exec.Cmd.ExtraFiles[0] in the child.
const childFD = 3

// bufBytes is the socket buffer we ask for. A seqpacket message must fit
// in the sender's buffer whole; the kernel caps the request at wmem_max
// (usually ≥ 208 KiB, enough for a full transport batch of ~90 KiB).
const bufBytes = 4 << 20

// MaxMessage is the largest message either side writes. Encoders split
// larger batches; readers size their buffer to it.
const MaxMessage = 128 << 10

// Pair is one host↔child channel before the child starts.
type Pair struct {
	Host  *net.UnixConn // the host keeps this end
	Child *os.File      // passed as ExtraFiles[0]; close after cmd.Start
}

// Env is the environment entry the host adds to the child's command.
func Env() string { return EnvFD + "=" + strconv.Itoa(childFD) }

// OpenChild returns the child's end of the channel, named by EnvFD. It
// fails when the process was not started by a Tarzan host (for example when
// a plugin binary is run by hand).
func OpenChild() (*net.UnixConn, error) {
	v := os.Getenv(EnvFD)
	if v == "" {
		return nil, fmt.Errorf("datachan: %s is not set: this plugin must be started by a Tarzan node", EnvFD)
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < childFD {
		return nil, fmt.Errorf("datachan: bad %s=%q", EnvFD, v)
	}
	// Keep our own children (if the plugin spawns any) from inheriting it.
	closeOnExec(fd)
	return fileConn(os.NewFile(uintptr(fd), "tarzan-data"))
}

// fileConn turns a socket descriptor into a *net.UnixConn that uses the
// runtime poller, so Close unblocks a pending Read.
func fileConn(f *os.File) (*net.UnixConn, error) {
	defer f.Close() // net.FileConn dups the descriptor
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("datachan: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("datachan: descriptor is a %T, not a unix socket", c)
	}
	return uc, nil
}
