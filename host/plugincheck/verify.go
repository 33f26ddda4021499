package plugincheck

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/tarzan-net/tarzan/plugins/builtin"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"google.golang.org/grpc"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

// dataChanEnv is what a node sets for transport and adapter children:
// their packet channel is file descriptor 3 (sdk/internal/datachan, which
// this package cannot import). verify hands every plugin one, as a node
// would, so that such children start.
const dataChanEnv = "TARZAN_PLUGIN_DATA_FD=3"

// Report is what Verify found out.
type Report struct {
	Path     string
	SHA256   string
	Pinned   bool
	Kind     string
	Services []string
	Protocol int
	PID      int
	// Options is what the plugin declares (a describe request), or nil;
	// OptionsNote says why there is none.
	Options     *pluginkit.Schema
	OptionsNote string
}

// Print writes the report as a table.
func (r *Report) Print(out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintf(w, "plugin\t%s\n", r.Path)
	switch {
	case r.SHA256 == "":
	case r.Pinned:
		fmt.Fprintf(w, "sha256\t%s (matches -sha256)\n", r.SHA256)
	default:
		fmt.Fprintf(w, "sha256\t%s (not checked: pass -sha256 to pin)\n", r.SHA256)
	}
	if r.Kind != "" {
		fmt.Fprintf(w, "kind\t%s (gRPC %s)\n", r.Kind, strings.Join(r.Services, ", "))
		fmt.Fprintf(w, "protocol\t%d (this tarzan speaks %d)\n", r.Protocol, pluginkit.ProtocolVersion)
		section := r.Kind
		if section == builtin.KindAdapter {
			section = "adapter] or [exit"
		}
		fmt.Fprintf(w, "node.toml\t[%s] path = %q, sha256 = %q\n", section, r.Path, r.SHA256)
	}
	switch {
	case r.Options != nil:
		fmt.Fprintf(w, "name\t%s (its Name(): node.toml's name must be this)\n", r.Options.Name)
		w.Flush()
		fmt.Fprintln(out, "options:")
		WriteSchema(out, r.Options)
	case r.OptionsNote != "":
		fmt.Fprintf(w, "options\t%s\n", r.OptionsNote)
	}
}

// Verify checks the pin, starts path through go-plugin and asks
// its gRPC server (go-plugin registers reflection) which Tarzan service
// it serves. The report holds whatever was learnt, even on error.
func Verify(path, pin string, timeout time.Duration, verbose bool) (*Report, error) {
	rep := &Report{Path: path}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, fmt.Errorf("plugin %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("plugin %s is not a regular file", path)
	case fi.Mode().Perm()&0o111 == 0:
		return nil, fmt.Errorf("plugin %s is not executable (chmod +x it)", path)
	}
	if rep.SHA256, err = FileSHA256(path); err != nil {
		return nil, fmt.Errorf("plugin %s: %w", path, err)
	}
	if pin != "" {
		if b, err := hex.DecodeString(pin); err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("-sha256 %q is not a SHA-256 (64 hex digits)", pin)
		}
		if !strings.EqualFold(pin, rep.SHA256) {
			return rep, fmt.Errorf("%w: %s: want %s, have %s; not starting it. Re-pin (sha256sum %s) if the binary was upgraded on purpose",
				pluginkit.ErrChecksum, path, strings.ToLower(pin), rep.SHA256, path)
		}
		rep.Pinned = true
	}

	// The data channel a node gives transports and adapters. The others
	// ignore it.
	parent, child, err := dataPair()
	if err != nil {
		return rep, fmt.Errorf("making the plugin's data channel: %w", err)
	}
	defer parent.Close()
	cmd := exec.Command(path)
	cmd.ExtraFiles = []*os.File{child}
	cmd.Env = []string{dataChanEnv}

	var stderr lockedBuffer // the child's stderr, for the error message
	logger := hclog.NewNullLogger()
	if verbose {
		logger = hclog.New(&hclog.LoggerOptions{Name: "verify", Output: os.Stderr, Level: hclog.Debug})
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginkit.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{pluginkit.ProtocolVersion: {}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     timeout,
		Logger:           logger,
		Stderr:           &stderr,
	})
	defer client.Kill()
	rpc, err := client.Client()
	child.Close()
	if err != nil {
		if strings.Contains(err.Error(), "Incompatible API version") {
			return rep, fmt.Errorf("%w: plugin %s: %v; upgrade whichever side is older", pluginkit.ErrVersionMismatch, path, err)
		}
		return rep, fmt.Errorf("plugin %s is not a Tarzan plugin: %s%s\n"+
			"(a Tarzan plugin is a program whose main calls <kind>plugin.Serve from github.com/tarzan-net/tarzan/sdk; -v shows more)",
			path, handshakeProblem(err), stderrTail(&stderr))
	}
	rep.Protocol = client.NegotiatedVersion()
	if rc := client.ReattachConfig(); rc != nil {
		rep.PID = rc.Pid
	}
	gc, ok := rpc.(*plugin.GRPCClient)
	if !ok {
		return rep, fmt.Errorf("plugin %s speaks go-plugin net/rpc, not gRPC: it is not a Tarzan plugin", path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	services, err := listServices(ctx, gc.Conn)
	if err != nil {
		return rep, fmt.Errorf("plugin %s: listing its gRPC services: %w", path, err)
	}
	for _, s := range services {
		// Services are named tarzan.<kind>.v<N>.<Service>.
		if parts := strings.Split(s, "."); len(parts) == 4 && parts[0] == "tarzan" {
			rep.Kind = parts[1]
			rep.Services = append(rep.Services, s)
		}
	}
	if rep.Kind == "" {
		return rep, fmt.Errorf("plugin %s completed the handshake but serves no Tarzan plugin service (it serves %v)", path, services)
	}
	switch d, err := Describe(path, timeout); {
	case err != nil:
		rep.OptionsNote = "not described: " + err.Error()
	case d.Schema == nil:
		rep.OptionsNote = "not declared (pluginkit.Declare): validate cannot check them"
	default:
		rep.Options = d.Schema
	}
	return rep, nil
}

// handshakeProblem says in one line what go-plugin's multi-line
// handshake error means.
func handshakeProblem(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "Failed to read any lines"), strings.Contains(msg, "exited before we could connect"):
		return "it exited without starting the go-plugin handshake"
	case strings.Contains(msg, "timeout"):
		return "no go-plugin handshake before the timeout"
	}
	first, _, _ := strings.Cut(msg, "\n")
	return "the go-plugin handshake failed: " + first
}

// stderrTail is the end of what a failed child wrote on stderr, indented.
func stderrTail(b *lockedBuffer) string {
	b.mu.Lock()
	s := strings.TrimSpace(b.buf.String())
	b.mu.Unlock()
	if s == "" {
		return ""
	}
	return "; it wrote on stderr:\n    " + strings.ReplaceAll(tail(s, 5), "\n", "\n    ")
}

// lockedBuffer is a bytes.Buffer go-plugin's stderr copier may write to
// while we read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 64<<10 {
		return len(p), nil // enough for an error message
	}
	return b.buf.Write(p)
}

// listServices asks a gRPC server for its services by reflection. Any
// plugin built with this SDK's gRPC serves reflection v1.
func listServices(ctx context.Context, conn *grpc.ClientConn) ([]string, error) {
	stream, err := reflectionv1.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	defer stream.CloseSend()
	req := &reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{}}
	if err := stream.Send(req); err != nil {
		return nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		out = append(out, s.GetName())
	}
	return out, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
