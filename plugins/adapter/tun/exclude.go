package tun

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// SetExclude replaces the set of prefixes that must never enter the TUN
// (the addresses of the node's mimics). Routes for new prefixes are added
// before stale ones are removed.
func (d *Device) SetExclude(prefixes []netip.Prefix) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.isClosed() {
		return adapter.ErrClosed
	}
	d.exclude = slices.Clone(prefixes)
	if !d.opened {
		return nil // Open applies them
	}
	return d.applyExclude()
}

// applyExclude makes the installed exclusion routes match d.exclude.
// d.mu is held.
func (d *Device) applyExclude() error {
	want, err := d.exclusionRoutes()
	if err != nil {
		return err
	}
	var errs []error
	for p, r := range want {
		if old, ok := d.excluded[p]; ok && old == r {
			continue
		}
		if err := d.record(func() { d.st.Routes = append(removeRoute(d.st.Routes, p), r) }); err != nil {
			return err
		}
		if err := d.nl.routeAdd(r); err != nil {
			errs = append(errs, fmt.Errorf("tun: exclude %s: add route %s: %w", p, r, err))
			continue
		}
		d.excluded[p] = r
	}
	for p, r := range d.excluded {
		if _, ok := want[p]; ok {
			continue
		}
		if err := ignoreGone(d.nl.routeDel(r)); err != nil {
			errs = append(errs, fmt.Errorf("tun: delete exclusion route %s: %w", r, err))
			continue
		}
		delete(d.excluded, p)
		if err := d.record(func() { d.st.Routes = removeRoute(d.st.Routes, p) }); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// exclusionRoutes computes, for every excluded prefix the tunnel routes
// would capture, the route it takes without the TUN.
func (d *Device) exclusionRoutes() (map[netip.Prefix]route, error) {
	tunnel := tunnelRoutes(d.opts.routes, d.opts.addrs)
	tables := map[uint8][]route{}
	want := map[netip.Prefix]route{}
	for _, p := range d.exclude {
		p = p.Masked()
		if !p.IsValid() || p.Addr().IsLoopback() || !overlapsAny(p, tunnel) {
			continue // the local table or the system's routes already keep it out
		}
		fam := family(p.Addr())
		if _, ok := tables[fam]; !ok {
			rs, err := d.nl.routes(fam)
			if err != nil {
				return nil, fmt.Errorf("tun: read routing table: %w", err)
			}
			tables[fam] = rs
		}
		if r, needed := d.pathAround(p, tables[fam]); needed {
			want[p] = r
		}
	}
	return want, nil
}

// pathAround returns a route for p through the most specific main-table
// route covering it that is neither ours nor through the TUN; if there
// is none, an unreachable route. needed is false when the system already
// has a route for exactly p: it wins over the tunnel routes by length,
// and replacing it would take it away when the adapter goes.
func (d *Device) pathAround(p netip.Prefix, table []route) (r route, needed bool) {
	var best *route
	for i := range table {
		r := &table[i]
		if r.OIF == d.index || r.proto == routeProto || r.Dst.Bits() > p.Bits() || !r.Dst.Contains(p.Addr()) {
			continue
		}
		if best == nil || r.Dst.Bits() > best.Dst.Bits() || (r.Dst.Bits() == best.Dst.Bits() && r.metric < best.metric) {
			best = r
		}
	}
	if best == nil || best.OIF == 0 {
		return route{Dst: p, Unreachable: true}, true
	}
	if best.Dst == p {
		return route{}, false
	}
	return route{Dst: p, Gateway: best.Gateway, OIF: best.OIF}, true
}

func overlapsAny(p netip.Prefix, ps []netip.Prefix) bool {
	for _, q := range ps {
		if p.Overlaps(q) {
			return true
		}
	}
	return false
}

func removeRoute(rs []route, dst netip.Prefix) []route {
	return slices.DeleteFunc(rs, func(r route) bool { return r.Dst == dst })
}
