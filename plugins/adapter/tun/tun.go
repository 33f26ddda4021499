// Package tun is Tarzan's kernel TUN client adapter: applications on this
// host use the tunnel without knowing it, through a TUN device with an
// address from 100.64.0.0/10 (and fd7a:7a72:7a6e::/64) and routes that send
// their traffic into it. It needs CAP_NET_ADMIN.
//
// Routing (DESIGN.md §3: the node's own links must never enter the TUN):
//   - a default route in "routes" is installed as two /1 halves (0.0.0.0/1
//   - 128.0.0.0/1, ::/1 + 8000::/1), which win by length, so the system's
//     default route stays in place for the node's links to its mimics;
//   - every Exclude prefix (Config.Exclude, then SetExclude) gets a route
//     through the path it would take without the TUN: the longest matching
//     route of the main table that is not ours, or, if there is none, an
//     "unreachable" route, so the prefix never falls into the TUN.
//
// Policy routing rules and tables other than main are not consulted when
// looking for that path; exclusions are pinned to the gateway that was
// current when SetExclude ran.
//
// Address and route setup speaks rtnetlink directly (netlink.go); the
// routes it installs carry protocol 122 ("proto 122" in `ip route`).
//
// Crash safety: every change is recorded in a state file in state_dir
// before it is made (state.go); Open first undoes what a previous run
// left, and Cleanup does the same for the core after a killed plugin.
//
// Options (the [adapter.options] table in node.toml):
//
//	name       device name (default tarzan0)
//	address    IPv4 address with prefix (default 100.64.0.2/10; "" = none)
//	address6   IPv6 address with prefix (default fd7a:7a72:7a6e::2/64; "" = none)
//	dns        resolver(s) inside the tunnel, answered by the exit (default
//	           Config.DNS, the node's; else adapter.DNSv4, 100.64.0.53); it
//	           is reached through the TUN's own prefix, and logged at Open.
//	           Pointing the system resolver at it (resolv.conf, resolvectl)
//	           is left to the operator: DNS to a LAN resolver otherwise
//	           bypasses the tunnel.
//	routes     what to send into the tunnel (default 0.0.0.0/0,::/0)
//	mtu        device MTU (default Config.MTU, else adapter.InnerMTU)
//	state_dir  where the state file lives (default /run/tarzan)
//
// Packets: the device runs with virtio-net headers, so the kernel may hand
// over TSO super-packets that wireguard's tun package splits, and writes of
// consecutive TCP segments are coalesced (GRO). Both need headroom and
// batch sizes the core's buffers need not have, so the adapter keeps its
// own buffers and copies once each way. Every packet is in Flow 0: a TUN
// is one isolation group.
package tun

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// Name is the adapter's registered name.
const Name = "tun"

// tunOffset is the headroom in the adapter's own buffers; wireguard's tun
// needs at least the virtio-net header (10 bytes) in front of a packet.
const tunOffset = 16

// maxReadErrors bounds consecutive failed reads before ReadPackets gives
// up (a device removed under us).
const maxReadErrors = 100

var (
	_ adapter.Factory        = New
	_ adapter.ExcludeUpdater = (*Device)(nil)
)

// Device is the TUN adapter.
type Device struct {
	opts options
	log  *slog.Logger

	closed chan struct{}
	once   sync.Once
	events sync.WaitGroup // the events drain goroutine

	mu        sync.Mutex // setup, exclusions, state file
	opened    bool
	nl        *netlink
	dev       wgtun.Device
	name      string
	index     int
	st        state
	statePath string
	exclude   []netip.Prefix         // as last given
	excluded  map[netip.Prefix]route // as installed

	// Read side (rmu): packets read from the device wait in
	// rbufs[rhead:rtail]. rbufs holds two of the device's batches, so a
	// read into the free tail always has a whole batch of room (a
	// super-packet splits into at most that many) while earlier packets
	// still wait.
	rmu          sync.Mutex
	rbufs        [][]byte
	rsizes       []int
	rhead, rtail int
	rdev         int  // the device's batch size: room one read needs
	rbulk        bool // the last read split a super-packet: a bulk sender, more may be queued
	rerrCount    int
	rready       func() bool // poll(2): would a read return at once (nil: never asked)

	wmu   sync.Mutex // write side
	wmem  [][]byte   // full-capacity buffers: room for GRO to coalesce
	wbufs [][]byte

	stats ioStats
}

// ioStats counts the device's system calls against the packets they
// moved: with offloads a read(2) can bring a TSO super-packet that
// wireguard's tun splits into many, and a write(2) can carry many
// segments coalesced (GRO).
type ioStats struct {
	reads, readPkts   atomic.Uint64 // device reads that returned packets; packets they returned
	topUps, polls     atomic.Uint64 // reads added to a batch after a poll said ready; polls
	writes, writePkts atomic.Uint64 // batches written; packets in them
	dropTooBig        atomic.Uint64 // read packets larger than the caller's buffer
	dropRead          atomic.Uint64 // reads that failed (e.g. a super-packet that did not split)
}

// Stats reports the device's reads and writes against the packets they
// moved, and what was dropped.
func (d *Device) Stats() map[string]uint64 {
	return map[string]uint64{
		"reads":            d.stats.reads.Load(),
		"read_packets":     d.stats.readPkts.Load(),
		"read_polls":       d.stats.polls.Load(),
		"read_topups":      d.stats.topUps.Load(),
		"write_batches":    d.stats.writes.Load(),
		"write_packets":    d.stats.writePkts.Load(),
		"drop_too_big":     d.stats.dropTooBig.Load(),
		"drop_read_errors": d.stats.dropRead.Load(),
	}
}

// New returns an unopened TUN adapter; it is an adapter.Factory.
func New(options map[string]string) (adapter.Adapter, error) {
	o, err := parseOptions(options)
	if err != nil {
		return nil, err
	}
	return &Device{opts: o, log: slog.Default().With("adapter", Name),
		closed: make(chan struct{}), excluded: map[netip.Prefix]route{}}, nil
}

func (d *Device) Name() string       { return Name }
func (d *Device) Role() adapter.Role { return adapter.RoleClient }

// DeviceName returns the kernel's name of the TUN device after Open.
func (d *Device) DeviceName() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.name
}

// Open removes what a previous run left behind, creates the device, gives
// it its addresses, MTU, exclusion routes and then the tunnel routes.
// On error everything done so far is undone.
func (d *Device) Open(cfg adapter.Config) (err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.closed:
		return adapter.ErrClosed
	default:
	}
	if d.opened {
		return errors.New("tun: already open")
	}
	if !d.opts.mtuSet && cfg.MTU > 0 {
		if cfg.MTU < adapter.InnerMTU {
			return fmt.Errorf("tun: Config.MTU %d is below %d", cfg.MTU, adapter.InnerMTU)
		}
		d.opts.mtu = cfg.MTU
	}
	if !d.opts.dnsSet && len(cfg.DNS) > 0 {
		d.opts.dns = slices.Clone(cfg.DNS)
	}
	if !d.opts.addrsSet && len(cfg.Addresses) > 0 {
		d.opts.addrs = slices.Clone(cfg.Addresses)
	}
	d.exclude = slices.Clone(cfg.Exclude)
	if err := os.MkdirAll(d.opts.stateDir, 0o700); err != nil {
		return fmt.Errorf("tun: state_dir: %w", err)
	}
	if d.nl, err = openNetlink(); err != nil {
		return err
	}
	d.statePath = statePath(d.opts.stateDir, d.opts.name)
	if err := cleanupFile(d.nl, d.statePath); err != nil {
		d.nl.close()
		return fmt.Errorf("tun: removing what a previous run left (%s): %w", d.statePath, err)
	}
	defer func() {
		if err != nil {
			d.teardown()
		}
	}()
	if d.dev, err = wgtun.CreateTUN(d.opts.name, d.opts.mtu); err != nil {
		return fmt.Errorf("tun: create device %s: %w", d.opts.name, err)
	}
	d.events.Add(1)
	go func(ev <-chan wgtun.Event) { // wireguard's listeners block on a full channel
		defer d.events.Done()
		for range ev {
		}
	}(d.dev.Events())
	if d.name, err = d.dev.Name(); err != nil {
		return fmt.Errorf("tun: device name: %w", err)
	}
	// Recorded only now: had we crashed before, the kernel would have
	// removed the device with our descriptor, and a state file naming it
	// could make a later cleanup delete somebody else's device.
	if err := d.record(func() { d.st = state{Device: d.name} }); err != nil {
		return err
	}
	if d.index, err = d.nl.linkIndex(d.name); err != nil {
		return fmt.Errorf("tun: index of %s: %w", d.name, err)
	}
	for _, a := range d.opts.addrs {
		if err := d.record(func() { d.st.Addrs = append(d.st.Addrs, a) }); err != nil {
			return err
		}
		if err := d.nl.addr(true, d.index, a); err != nil {
			hint := ""
			if a.Addr().Is6() {
				hint = ` (if IPv6 is disabled here, set address6 = "")`
			}
			return fmt.Errorf("tun: add address %s to %s: %w%s", a, d.name, err, hint)
		}
	}
	if err := d.nl.linkUp(d.index, d.opts.mtu); err != nil {
		return fmt.Errorf("tun: set %s up with MTU %d: %w", d.name, d.opts.mtu, err)
	}
	// Exclusions go in before the tunnel routes: there is no moment in
	// which a mimic's address routes into the TUN.
	if err := d.applyExclude(); err != nil {
		return err
	}
	for _, p := range tunnelRoutes(d.opts.routes, d.opts.addrs) {
		r := route{Dst: p, OIF: d.index}
		if err := d.record(func() { d.st.Routes = append(d.st.Routes, r) }); err != nil {
			return err
		}
		if err := d.nl.routeAdd(r); err != nil {
			return fmt.Errorf("tun: add route %s: %w", r, err)
		}
	}
	d.initRead()
	if f := d.dev.File(); f != nil {
		if rc, err := f.SyscallConn(); err == nil {
			d.rready = newReadyPoller(rc).ready
		}
	}
	d.wmem = make([][]byte, adapter.BatchSize)
	d.wbufs = make([][]byte, adapter.BatchSize)
	d.opened = true
	d.log.Info("TUN device up; point the system resolver at dns", "device", d.name, "mtu", d.opts.mtu, "dns", d.opts.dns)
	return nil
}

// initRead sizes the read side for d.dev.
func (d *Device) initRead() {
	d.rdev = max(d.dev.BatchSize(), 1)
	d.rbufs = make([][]byte, 2*d.rdev)
	for i := range d.rbufs {
		d.rbufs[i] = make([]byte, tunOffset+max(d.opts.mtu, 1500))
	}
	d.rsizes = make([]int, len(d.rbufs))
	d.rhead, d.rtail, d.rbulk = 0, 0, false
}

// record changes the in-memory state and writes the state file; called
// before the change it describes is made.
func (d *Device) record(change func()) error {
	change()
	return d.st.save(d.statePath)
}

// ReadPackets returns IP packets the host sent into the TUN, all in Flow 0.
//
// One read(2) brings a TSO super-packet of up to 64 KiB, split here into
// segments of the device's MTU. While a bulk sender keeps the device busy
// (the last read was such a super-packet), ReadPackets adds what the
// kernel has already queued, as long as the caller has room: one poll(2)
// with no timeout per added read. A batch twice as large is half as many
// messages to the node and wake-ups of its reader.
func (d *Device) ReadPackets(pkts []adapter.Packet) (int, error) {
	d.rmu.Lock()
	defer d.rmu.Unlock()
	if !d.isOpen() {
		return 0, adapter.ErrClosed
	}
	for {
		if d.rhead == d.rtail {
			d.rhead, d.rtail = 0, 0
			if err := d.readDevice(); err != nil {
				return 0, err
			}
		}
		if d.rbulk {
			d.topUp(len(pkts))
		}
		k := 0
		for ; k < len(pkts) && d.rhead < d.rtail; d.rhead++ {
			sz := d.rsizes[d.rhead]
			if sz <= 0 {
				continue
			}
			if sz > len(pkts[k].Buf) {
				d.stats.dropTooBig.Add(1) // does not fit the caller's buffer
				continue
			}
			pkts[k].N = copy(pkts[k].Buf, d.rbufs[d.rhead][tunOffset:tunOffset+sz])
			pkts[k].Flow = 0
			k++
		}
		if k > 0 {
			return k, nil
		}
	}
}

// readDevice reads once into the free tail of rbufs, blocking until the
// kernel has a packet. rmu is held and a batch of room is free.
func (d *Device) readDevice() error {
	n, err := d.dev.Read(d.rbufs[d.rtail:], d.rsizes[d.rtail:], tunOffset)
	if err != nil {
		if d.isClosed() || errors.Is(err, os.ErrClosed) {
			return adapter.ErrClosed
		}
		d.stats.dropRead.Add(1)
		if d.rerrCount++; d.rerrCount > maxReadErrors {
			return fmt.Errorf("tun: read %s: %w", d.name, err)
		}
		if n <= 0 {
			return nil // e.g. a super-packet that did not split: lost
		}
	}
	d.rerrCount = 0
	d.rtail += n
	d.rbulk = n > 1
	d.stats.reads.Add(1)
	d.stats.readPkts.Add(uint64(n))
	return nil
}

// topUp adds to the waiting packets, up to want, what the device has
// queued: a read only after poll(2) said one would not block, and only
// into a free batch of room. rmu is held.
func (d *Device) topUp(want int) {
	for d.rbulk && d.rtail-d.rhead < want {
		if len(d.rbufs)-d.rtail < d.rdev {
			if d.rhead == 0 {
				return
			}
			// Move the waiting packets' buffers to the front (the
			// slices, not their bytes).
			k := 0
			for i := d.rhead; i < d.rtail; i, k = i+1, k+1 {
				d.rbufs[k], d.rbufs[i] = d.rbufs[i], d.rbufs[k]
				d.rsizes[k] = d.rsizes[i]
			}
			d.rhead, d.rtail = 0, k
			if len(d.rbufs)-d.rtail < d.rdev {
				return
			}
		}
		if d.rready == nil {
			return
		}
		d.stats.polls.Add(1)
		if !d.rready() {
			return
		}
		before := d.rtail
		if err := d.readDevice(); err != nil || d.rtail == before {
			return // a closed device shows at the next blocking read
		}
		d.stats.topUps.Add(1)
	}
}

// WritePackets hands IP packets to the host. Malformed packets the kernel
// refuses are dropped; the batch still counts as accepted.
func (d *Device) WritePackets(pkts []adapter.Packet) (int, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if !d.isOpen() {
		return 0, adapter.ErrClosed
	}
	for start := 0; start < len(pkts); start += len(d.wbufs) {
		batch := pkts[start:min(len(pkts), start+len(d.wbufs))]
		k := 0
		for _, p := range batch {
			if p.N <= 0 || p.N > len(p.Buf) {
				continue
			}
			b := p.Buf[:p.N]
			if v := b[0] >> 4; v != 4 && v != 6 {
				continue
			}
			if d.wmem[k] == nil {
				d.wmem[k] = make([]byte, tunOffset+65535)
			}
			d.wbufs[k] = d.wmem[k][:tunOffset+copy(d.wmem[k][tunOffset:], b)]
			k++
		}
		if k == 0 {
			continue
		}
		d.stats.writes.Add(1)
		d.stats.writePkts.Add(uint64(k))
		if _, err := d.dev.Write(d.wbufs[:k], tunOffset); err != nil {
			if d.isClosed() || errors.Is(err, os.ErrClosed) {
				return start, adapter.ErrClosed
			}
			d.log.Debug("TUN write dropped packets", "err", err)
		}
	}
	return len(pkts), nil
}

func (d *Device) isOpen() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opened && !d.isClosed()
}

func (d *Device) isClosed() bool {
	select {
	case <-d.closed:
		return true
	default:
		return false
	}
}

// Close removes the routes, the addresses and the device, then the state
// file. It is idempotent.
func (d *Device) Close() error {
	var err error
	d.once.Do(func() {
		close(d.closed)
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.nl != nil {
			err = d.teardown()
		}
	})
	return err
}

// teardown undoes Open (also a partial one). d.mu is held.
func (d *Device) teardown() error {
	var errs []error
	for _, r := range slices.Backward(d.st.Routes) {
		if err := ignoreGone(d.nl.routeDel(r)); err != nil {
			errs = append(errs, fmt.Errorf("tun: delete route %s: %w", r, err))
		}
	}
	for _, a := range d.st.Addrs {
		if err := ignoreGone(d.nl.addr(false, d.index, a)); err != nil {
			errs = append(errs, fmt.Errorf("tun: delete address %s: %w", a, err))
		}
	}
	if d.dev != nil {
		// A TUN device disappears with its last descriptor.
		if err := d.dev.Close(); err != nil {
			errs = append(errs, fmt.Errorf("tun: close %s: %w", d.name, err))
		}
		d.events.Wait() // d.dev stays: late Read/Write calls get os.ErrClosed
	}
	d.opened = false
	if len(errs) == 0 {
		if err := os.Remove(d.statePath); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	} else {
		d.log.Warn("TUN teardown incomplete; the state file is kept for Cleanup", "state", d.statePath)
	}
	d.st = state{}
	d.excluded = map[netip.Prefix]route{}
	d.nl.close()
	d.nl = nil
	return errors.Join(errs...)
}
