package control

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// ErrUsage: the command line was wrong; the usage went to CLI.Err.
var ErrUsage = errors.New("usage")

// CLI is `tarzan tunnel build|ping|list|close`: its flags and output, on
// top of the API (Client). cmd/tarzan holds only the entry point, so
// that it stays small.
type CLI struct {
	Out, Err io.Writer
	// Dial reaches the node the flags name: cfgPath a node.toml (its data
	// directory holds the API's address and cookie), or addr with the
	// cookie file for TCP.
	Dial func(cfgPath, addr, cookieFile string) (*Client, error)
	// Interrupt is the context ping runs in until Ctrl-C; nil: one that
	// ends on SIGINT or SIGTERM.
	Interrupt func() (context.Context, context.CancelFunc)
}

// TunnelUsage is `tarzan tunnel -h`.
const TunnelUsage = `Usage:
  tarzan tunnel build [-hops 3] [-path ID,ID,...] [-pings 1] [-once] [-json]
                                  build a tunnel through the running node and ping each hop;
                                  it stays open (until closed or idle) unless -once
  tarzan tunnel ping [-c 3] [-i 1s] [-json] ID
                                  ping every hop of an open tunnel, like ping(8)
  tarzan tunnel list [-json]      the node's open tunnels: role, hops, age, traffic
  tarzan tunnel close ID...       close tunnels built with 'tunnel build'

Every subcommand finds the node by -c node.toml (default; ping: -config), or by
-control ADDR [-cookie FILE].
IDs are the tunnel numbers 'build' and 'list' print. The API is in docs/CONTROL.md.
`

// RunTunnel runs `tarzan tunnel ARGS`.
func (c *CLI) RunTunnel(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(c.Err, TunnelUsage)
		if len(args) == 0 {
			return ErrUsage
		}
		return nil
	}
	run := map[string]func([]string) error{
		"build": c.build, "ping": c.ping, "list": c.list, "ls": c.list, "close": c.close,
	}[args[0]]
	if run == nil {
		return fmt.Errorf("unknown tunnel subcommand %q (build, ping, list, close)", args[0])
	}
	return run(args[1:])
}

// cliFlags are one subcommand's flags, with the ones that find the node.
type cliFlags struct {
	*flag.FlagSet
	cfg, addr, cookie *string
	json              *bool
}

func (c *CLI) flags(name, usage string) cliFlags {
	fs := flag.NewFlagSet("tunnel "+name, flag.ContinueOnError)
	fs.SetOutput(c.Err)
	fs.Usage = func() {
		fmt.Fprintf(c.Err, "Usage: tarzan tunnel %s\n\n", usage)
		fs.PrintDefaults()
	}
	cfg := fs.String("config", "node.toml", "configuration file of the running node")
	if name != "ping" { // ping's -c is the count, as in ping(8)
		fs.StringVar(cfg, "c", "node.toml", "configuration file of the running node (also -config)")
	}
	return cliFlags{
		FlagSet: fs,
		cfg:     cfg,
		addr:    fs.String("control", "", "control API address, HOST:PORT or unix:PATH (default: read from the node's data directory)"),
		cookie:  fs.String("cookie", "", "with -control HOST:PORT: the node's control.cookie file"),
		json:    fs.Bool("json", false, "print JSON"),
	}
}

// parse parses args, flags before and after the positional arguments,
// and wants between min and max of those (max < 0: any number).
func (f cliFlags) parse(args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			return nil, ErrUsage
		}
		if f.NArg() == 0 {
			break
		}
		pos = append(pos, f.Arg(0))
		args = f.Args()[1:]
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		f.Usage()
		return nil, ErrUsage
	}
	for _, id := range pos {
		if n, err := strconv.ParseUint(id, 10, 64); err != nil || n == 0 {
			return nil, fmt.Errorf("%q is no tunnel ID: IDs are the numbers 'tarzan tunnel list' prints", id)
		}
	}
	return pos, nil
}

func (c *CLI) client(f cliFlags) (*Client, error) {
	return c.Dial(*f.cfg, *f.addr, *f.cookie)
}

func (c *CLI) printJSON(v any) error {
	enc := json.NewEncoder(c.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *CLI) build(args []string) error {
	f := c.flags("build", "build [-hops 3] [-path ID,ID,...] [-pings 1] [-once] [-json]\n\n"+
		"Builds a tunnel from the running node, pings each hop and prints the tunnel's\n"+
		"number, its hops (short IDs, addresses, domains) and how long the build took.")
	hops := f.Int("hops", 3, "tunnel length (with -path: the path's)")
	path := f.String("path", "", "the hops, comma-separated full node IDs (64 hex digits); every relay still extends only to its mimics")
	pings := f.Int("pings", 1, "pings per hop after the build (the median is shown)")
	once := f.Bool("once", false, "close the tunnel after the pings instead of keeping it")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	req := TunnelRequest{Hops: *hops, Pings: *pings, Keep: !*once}
	if *path != "" {
		req.Path = strings.Split(*path, ",")
		req.Hops = len(req.Path)
	}
	cl, err := c.client(f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := cl.Tunnel(ctx, req)
	if err != nil {
		return explain(err, "")
	}
	if *f.json {
		return c.printJSON(rep)
	}
	name := "tunnel " + rep.ID
	if rep.ID == "" {
		name = fmt.Sprintf("tunnel %d (closed again, -once)", rep.Number)
	}
	fmt.Fprintf(c.Out, "%s built in %.2f ms through %d hops\n", name, rep.SetupMS, len(rep.Hops))
	w := tabwriter.NewWriter(c.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "HOP\tID\tADDRESS\tDOMAIN\tRTT")
	for i, h := range rep.Hops {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%.2f ms\n", i+1, h.ID, h.Addr, h.Domain, h.RTTMS)
	}
	w.Flush()
	if rep.ID != "" {
		fmt.Fprintf(c.Out, "ping it: tarzan tunnel ping %s; close it: tarzan tunnel close %s\n", rep.ID, rep.ID)
	}
	return nil
}

func (c *CLI) list(args []string) error {
	f := c.flags("list", "list [-json]")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	cl, err := c.client(f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := cl.Tunnels(ctx)
	if err != nil {
		return explain(err, "")
	}
	if *f.json {
		return c.printJSON(l)
	}
	WriteTunnelTable(c.Out, l.Tunnels)
	return nil
}

// WriteTunnelTable prints tunnels as `tarzan tunnel list` does: one line
// each, with role, hops, age, idle time and DATA bytes.
func WriteTunnelTable(out io.Writer, ts []TunnelInfo) {
	if len(ts) == 0 {
		fmt.Fprintln(out, "no open tunnels")
		return
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tROLE\tHOPS\tAGE\tIDLE\tRX\tTX")
	for _, t := range ts {
		role := t.Role
		switch {
		case t.Role == RoleIP && t.Spare:
			role = "ip/spare"
		case t.Role == RoleIP:
			role = fmt.Sprintf("ip/%d", t.Group)
		}
		path := strings.Join(t.Hops, ">")
		if t.Repairing {
			path += " (repairing)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, role, path, short(t.AgeS), short(t.IdleS), Bytes(t.RxBytes), Bytes(t.TxBytes))
	}
	w.Flush()
}

// short renders seconds as 1h2m3s, 4.5s or 120ms.
func short(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func (c *CLI) close(args []string) error {
	f := c.flags("close", "close ID...")
	ids, err := f.parse(args, 1, -1)
	if err != nil {
		return err
	}
	cl, err := c.client(f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, id := range ids {
		if err := cl.CloseTunnel(ctx, id); err != nil {
			errs = append(errs, explain(err, id))
			continue
		}
		fmt.Fprintf(c.Out, "closed tunnel %s\n", id)
	}
	return errors.Join(errs...)
}

// explain turns the API's answers into what a user of the command needs:
// which tunnel, and what to do.
func explain(err error, id string) error {
	var ae *APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.Status {
	case http.StatusNotFound:
		return fmt.Errorf("no open tunnel %s on this node ('tarzan tunnel list' shows the open ones)", id)
	case http.StatusBadRequest, http.StatusConflict, http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if id != "" && !strings.Contains(ae.Message, "tunnel "+id) {
			return fmt.Errorf("tunnel %s: %s", id, ae.Message)
		}
		return errors.New(ae.Message)
	}
	return err
}

// interrupted is a context that ends on Ctrl-C (or SIGTERM), so that
// ping prints its statistics then, as ping(8) does.
func interrupted() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
