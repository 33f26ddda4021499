package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/plugins/builtin"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adapterplugin"
	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/cover/coverplugin"
	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoveryplugin"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transportplugin"
)

// One factory for builtin and external plugins: a plugin with a path is
// an external executable pinned by SHA-256; otherwise it is a shipped one,
// either called in process or served by this binary as a child.

// launcher returns how to start cfg's plugin as a child process.
func launcher(kind string, cfg config.Plugin, log *slog.Logger) (pluginkit.Launcher, error) {
	if cfg.Path != "" {
		return pluginkit.Launcher{Path: cfg.Path, Checksum: cfg.SHA256, Logger: log, Name: cfg.Name}, nil
	}
	self, err := os.Executable()
	if err != nil {
		return pluginkit.Launcher{}, fmt.Errorf("finding own executable to serve plugin %s/%s: %w", kind, cfg.Name, err)
	}
	return pluginkit.Launcher{Path: self, Args: []string{"plugin", "serve", kind, cfg.Name}, Logger: log, Name: cfg.Name}, nil
}

func unknownPlugin(kind, name string) error {
	return fmt.Errorf("%s plugin %q is not shipped with this binary (shipped: %v); name an external one with path and sha256", kind, name, builtin.Names(kind))
}

func openTransport(cfg config.Plugin, log *slog.Logger) (transport.Transport, error) {
	if cfg.Path == "" {
		f, ok := builtin.Transports[cfg.Name]
		if !ok {
			return nil, unknownPlugin(builtin.KindTransport, cfg.Name)
		}
		if cfg.InProcess {
			return f(cfg.Options)
		}
	}
	l, err := launcher(builtin.KindTransport, cfg, log)
	if err != nil {
		return nil, err
	}
	return transportplugin.Launch(l, cfg.Options)
}

func openDiscovery(cfg config.Plugin, log *slog.Logger) (discovery.Discovery, error) {
	if cfg.Path == "" {
		f, ok := builtin.Discoveries[cfg.Name]
		if !ok {
			return nil, unknownPlugin(builtin.KindDiscovery, cfg.Name)
		}
		if cfg.InProcess {
			return f(cfg.Options)
		}
	}
	l, err := launcher(builtin.KindDiscovery, cfg, log)
	if err != nil {
		return nil, err
	}
	return discoveryplugin.Launch(l, cfg.Options)
}

func openCover(cfg config.Plugin, log *slog.Logger) (cover.Policy, error) {
	if cfg.Path == "" {
		f, ok := builtin.Covers[cfg.Name]
		if !ok {
			return nil, unknownPlugin(builtin.KindCover, cfg.Name)
		}
		if cfg.InProcess {
			return f(cfg.Options)
		}
	}
	l, err := launcher(builtin.KindCover, cfg, log)
	if err != nil {
		return nil, err
	}
	return coverplugin.Launch(l, cfg.Options)
}

func openAdapter(cfg config.Plugin, log *slog.Logger) (adapter.Adapter, error) {
	if cfg.Path == "" {
		f, ok := builtin.Adapters[cfg.Name]
		if !ok {
			return nil, unknownPlugin(builtin.KindAdapter, cfg.Name)
		}
		if cfg.InProcess {
			return f(cfg.Options)
		}
	}
	l, err := launcher(builtin.KindAdapter, cfg, log)
	if err != nil {
		return nil, err
	}
	return adapterplugin.Launch(l, cfg.Options)
}

// pluginStats reports a plugin's supervisor stats when it runs out of process.
func pluginStats(p any) (pluginkit.Stats, bool) {
	if r, ok := p.(pluginkit.Reporter); ok {
		return r.PluginStats(), true
	}
	return pluginkit.Stats{}, false
}

// version is the tarzan binary's version, set at build time with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

const pluginUsage = `Usage:
  tarzan plugin serve KIND NAME               serve a shipped plugin to a parent node (started by the node itself)
  tarzan plugin list [-c node.toml]           list the shipped plugins, or the ones a config selects
  tarzan plugin verify PATH [-sha256 HEX]     start an external plugin as a node would; report its kind and protocol

Kinds: transport, discovery, cover, adapter.
`

// runPlugin implements `tarzan plugin serve|list|verify`.
func runPlugin(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(os.Stderr, pluginUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "list":
		return runPluginList(args[1:])
	case "verify":
		return runPluginVerify(args[1:])
	case "serve":
		if len(args) != 3 {
			return fmt.Errorf("usage: tarzan plugin serve KIND NAME")
		}
		kind, name := args[1], args[2]
		switch kind {
		case builtin.KindTransport:
			f, ok := builtin.Transports[name]
			if !ok {
				return unknownPlugin(kind, name)
			}
			transportplugin.Serve(f)
		case builtin.KindDiscovery:
			f, ok := builtin.Discoveries[name]
			if !ok {
				return unknownPlugin(kind, name)
			}
			discoveryplugin.Serve(f)
		case builtin.KindCover:
			f, ok := builtin.Covers[name]
			if !ok {
				return unknownPlugin(kind, name)
			}
			coverplugin.Serve(f)
		case builtin.KindAdapter:
			f, ok := builtin.Adapters[name]
			if !ok {
				return unknownPlugin(kind, name)
			}
			adapterplugin.Serve(f)
		default:
			return fmt.Errorf("unknown plugin kind %q (transport, discovery, cover, adapter)", kind)
		}
		return nil
	default:
		return fmt.Errorf("unknown plugin subcommand %q (serve, list, verify)", args[0])
	}
}

// runPluginList implements `tarzan plugin list [-c node.toml]`.
func runPluginList(args []string) error {
	fs := newFlags("plugin list", "plugin list [-c node.toml]\n\n"+
		"Without -c: every plugin shipped in this binary, by kind.\n"+
		"With -c: the plugins the config selects, builtin or external, whether each\n"+
		"external file still matches its pinned SHA-256, and, if the node is running,\n"+
		"each plugin's process ID and restart count (from its control API).")
	cfgPath := fs.String("c", "", "a node.toml; list the plugins it selects")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	defer w.Flush()
	if *cfgPath == "" {
		fmt.Fprintln(w, "KIND\tNAME\tSOURCE\tVERSION\tPROTOCOL")
		for _, kind := range []string{builtin.KindTransport, builtin.KindDiscovery, builtin.KindCover, builtin.KindAdapter} {
			for _, n := range builtin.Names(kind) {
				fmt.Fprintf(w, "%s\t%s\tbuiltin\ttarzan %s\t%d\n", kind, n, version, pluginkit.ProtocolVersion)
			}
		}
		return nil
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	running, why := runningPlugins(cfg)
	fmt.Fprintln(w, "KIND\tNAME\tSOURCE\tPATH\tSHA256\tON DISK\tRUNNING")
	for _, sel := range selectedPlugins(cfg) {
		p := sel.cfg
		source, path, pin, disk := "builtin", "-", "-", "-"
		switch {
		case p.Path != "":
			source, path, pin = "external", p.Path, strings.ToLower(p.SHA256)
			disk = checkPin(p.Path, p.SHA256)
		case !shipped(sel.registry, p.Name):
			source = "unknown (not shipped, no path)"
		case p.InProcess:
			source = "builtin, in process"
		}
		state := why
		if r, ok := running[sel.kind]; ok {
			switch {
			case r.InProc:
				state = "in the node process"
			case r.PID != 0:
				state = fmt.Sprintf("pid %d, %d restarts", r.PID, r.Restarts)
			default:
				state = fmt.Sprintf("restarting (%d restarts)", r.Restarts)
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sel.kind, p.Name, source, path, pin, disk, state)
	}
	return nil
}

type selectedPlugin struct {
	kind     string // as the control API names it: transport ... adapter, exit
	registry string // builtin kind the name is looked up in
	cfg      config.Plugin
}

// selectedPlugins is what cfg makes a node run, in start order.
func selectedPlugins(cfg *config.Config) []selectedPlugin {
	out := []selectedPlugin{
		{builtin.KindTransport, builtin.KindTransport, cfg.Transport.Plugin},
		{builtin.KindDiscovery, builtin.KindDiscovery, cfg.Discovery},
		{builtin.KindCover, builtin.KindCover, cfg.Cover.Plugin},
	}
	if cfg.Adapter.Name != "" || cfg.Adapter.Path != "" {
		out = append(out, selectedPlugin{builtin.KindAdapter, builtin.KindAdapter, cfg.Adapter})
	}
	if cfg.Node.Exit {
		out = append(out, selectedPlugin{"exit", builtin.KindAdapter, cfg.Exit.Plugin})
	}
	return out
}

func shipped(kind, name string) bool {
	return slices.Contains(builtin.Names(kind), name)
}

// checkPin says whether the file at path has the SHA-256 pin.
func checkPin(path, pin string) string {
	sum, err := fileSHA256(path)
	switch {
	case err != nil:
		return "unreadable: " + err.Error()
	case strings.EqualFold(sum, pin):
		return "matches"
	default:
		return "MISMATCH (have " + sum + ")"
	}
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// runningPlugins asks cfg's node, if it runs, for its plugins by kind.
// Otherwise it says why not, for the RUNNING column.
func runningPlugins(cfg *config.Config) (map[string]control.PluginReply, string) {
	b, err := os.ReadFile(filepath.Join(cfg.Node.DataDir, controlAddrFile))
	if err != nil {
		return nil, "node not running"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := (&control.Client{Addr: strings.TrimSpace(string(b))}).Status(ctx)
	if err != nil {
		return nil, "node not answering"
	}
	out := make(map[string]control.PluginReply, len(st.Plugins))
	for _, p := range st.Plugins {
		out[p.Kind] = p
	}
	return out, "not running"
}

// dataChanEnv is what a node sets for transport and adapter children:
// their packet channel is file descriptor 3 (sdk/internal/datachan, which
// this package cannot import). verify hands every plugin one, as a node
// would, so that such children start.
const dataChanEnv = "TARZAN_PLUGIN_DATA_FD=3"

// runPluginVerify implements `tarzan plugin verify PATH [-sha256 HEX]`.
func runPluginVerify(args []string) error {
	fs := newFlags("plugin verify", "plugin verify PATH [-sha256 HEX] [-timeout 10s]\n\n"+
		"Starts the plugin executable PATH the way a node does (go-plugin handshake,\n"+
		"data channel on fd 3), reports which plugin kind it serves and which protocol\n"+
		"version it speaks, and stops it. With -sha256 the file must match first.\n"+
		"Exits non-zero on a checksum mismatch or a failed handshake.")
	pin := fs.String("sha256", "", "the pinned SHA-256 (64 hex digits) the file must match")
	timeout := fs.Duration("timeout", 10*time.Second, "give up on the handshake after this long")
	verbose := fs.Bool("v", false, "show go-plugin's and the plugin's log lines")
	// Flags may come before or after PATH.
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return errUsage
	}
	path := rest[0]
	if err := parseFlags(fs, rest[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	rep, err := verifyPlugin(path, *pin, *timeout, *verbose)
	if rep != nil {
		rep.print(os.Stdout)
	}
	return err
}

// verifyReport is what verify found out.
type verifyReport struct {
	Path     string
	SHA256   string
	Pinned   bool
	Kind     string
	Services []string
	Protocol int
	PID      int
}

func (r *verifyReport) print(out io.Writer) {
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
}

// verifyPlugin checks the pin, starts path through go-plugin and asks
// its gRPC server (go-plugin registers reflection) which Tarzan service
// it serves. The report holds whatever was learnt, even on error.
func verifyPlugin(path, pin string, timeout time.Duration, verbose bool) (*verifyReport, error) {
	rep := &verifyReport{Path: path}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, fmt.Errorf("plugin %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("plugin %s is not a regular file", path)
	case fi.Mode().Perm()&0o111 == 0:
		return nil, fmt.Errorf("plugin %s is not executable (chmod +x it)", path)
	}
	if rep.SHA256, err = fileSHA256(path); err != nil {
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
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return rep, fmt.Errorf("making the plugin's data channel: %w", err)
	}
	host, child := os.NewFile(uintptr(fds[0]), "data-host"), os.NewFile(uintptr(fds[1]), "data-child")
	defer host.Close()
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
