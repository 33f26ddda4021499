package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/onion"
)

// Repair of a tunnel whose path broke, and the blame that keeps a relay
// from steering it (PROTOCOL §9, Circuits).
//
// A relay that reports a failure (EXTEND_FAILED, TRUNCATED) or lets an
// extension time out may be the one at fault: a hostile relay can fail
// every extension toward honest nodes until the initiator picks its
// colluder (selective denial of service). So a failure is blamed on the
// hop that reported it as well as on the hop beyond, the tunnel never
// walks into a blamed hop again, and a repair keeps only the hops before
// the reporter: dropping a tunnel costs a hostile relay its place in it.
// A tunnel repaired repairCap times within repairWindow is rebuilt on a
// fresh path instead, first hop included, so that repairs cannot be used
// to sample the next hops of one relay over and over.

const (
	repairCap      = 3
	repairWindow   = 10 * time.Minute
	repairAttempts = 5
)

var errRepairRunning = errors.New("node: tunnel repair already running")

// Repair replaces every hop after the first keep hops (keep >= 1) without
// rebuilding the kept part: it truncates the circuit at hop keep (unless
// that hop already reported TRUNCATED) and extends it again through new
// hops chosen by the same rules, keeping the exit constraint the tunnel
// was built with. Past the repair cap it rebuilds the whole tunnel on a
// fresh path instead.
func (t *Tunnel) Repair(ctx context.Context, keep int) error {
	if keep < 1 {
		return fmt.Errorf("node: cannot keep %d hops", keep)
	}
	return t.repair(ctx, keep, nil)
}

// repair keeps the first keep hops (0: none, a rebuild on a fresh path)
// and extends the tunnel back to its length, after adding blame to the
// hops it avoids. Each failure blames its hops and drops the one that
// reported it (or stayed silent) before the next attempt.
func (t *Tunnel) repair(ctx context.Context, keep int, blame []identity.ID) error {
	capped, cut, err := t.beginRepair(keep, blame)
	if err != nil {
		return err
	}
	defer t.endRepair()
	if capped {
		keep, cut = 0, false
	}
	return t.repairLoop(ctx, keep, cut)
}

// beginRepair marks the tunnel under repair (errRepairRunning if it
// already is), adds blame and counts the repair against the cap. capped
// reports that the cap is reached (rebuild on a fresh path); cut that the
// circuit already ends after hop keep (an unsolicited TRUNCATED).
func (t *Tunnel) beginRepair(keep int, blame []identity.ID) (capped, cut bool, err error) {
	now := t.n.opts.Clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if keep < 0 || keep > len(t.hops) {
		return false, false, fmt.Errorf("node: cannot keep %d of %d hops", keep, len(t.hops))
	}
	if t.repairing {
		return false, false, errRepairRunning
	}
	t.repairing = true
	t.blameLocked(blame)
	recent := t.repairs[:0]
	for _, at := range t.repairs {
		if now.Sub(at) < repairWindow {
			recent = append(recent, at)
		}
	}
	t.repairs = append(recent, now)
	capped = len(t.repairs) > repairCap
	cut = !capped && keep > 0 && t.cutAt == keep
	t.cutAt = 0
	return capped, cut, nil
}

func (t *Tunnel) endRepair() {
	t.mu.Lock()
	t.repairing = false
	t.mu.Unlock()
}

// repairLoop keeps the first keep hops (0: a rebuild on a fresh path) and
// extends the tunnel back to its length, retrying after each failure with
// the failure's hops blamed.
func (t *Tunnel) repairLoop(ctx context.Context, keep int, cut bool) error {
	var lastErr error
	for attempt := 0; attempt < repairAttempts; attempt++ {
		var hf *hopFailure
		var err error
		if keep == 0 {
			hf, err = t.restart(ctx)
		} else {
			hf, err = t.regrow(ctx, keep, cut)
		}
		switch {
		case err != nil:
			return err // no path left, or the tunnel closed
		case hf == nil && keep == 0:
			t.n.stats.inc(EventTunnelsRebuilt)
			t.n.log.Debug("tunnel rebuilt on a fresh path", "hops", t.length)
			return nil
		case hf == nil:
			t.n.stats.inc(EventTunnelsRepaired)
			t.n.log.Debug("tunnel repaired", "kept", keep, "hops", t.length)
			return nil
		}
		lastErr = hf
		if errors.Is(hf, ErrTunnelClosed) || ctx.Err() != nil {
			return hf
		}
		t.mu.Lock()
		t.blameLocked(hf.blame)
		t.mu.Unlock()
		keep = min(keep, max(hf.pos-1, 0)) // nothing from the reporter on
		cut = false                        // where the circuit ends now is unknown
	}
	return lastErr
}

// blameLocked adds ids to the hops the tunnel avoids, for blameFor from
// now (again from now for a hop already blamed).
func (t *Tunnel) blameLocked(ids []identity.ID) {
	now := t.n.opts.Clock.Now()
	for _, id := range ids {
		if i := slices.Index(t.blamed, id); i >= 0 {
			t.blamedAt[i] = now
			continue
		}
		t.blamed = append(t.blamed, id)
		t.blamedAt = append(t.blamedAt, now)
	}
}

// blameFor is how long a tunnel avoids a hop it blamed. Not for ever: a
// tunnel can live for hours (a TUN client's), and in a small network each
// relay fault it heals around costs it two hops, so that after a few
// faults it would have no path left and close, resetting every connection
// through it. Blame exists against a relay that fails a tunnel's
// extensions until it is re-routed through a colluder; repairCap already
// bounds how often that can happen in repairWindow, and a blamed hop that
// returns after blameFor has to start over.
const blameFor = 30 * time.Minute

// avoidList is what no new hop of the tunnel may be: its caller's
// constraint and every hop blamed within blameFor.
func (t *Tunnel) avoidList() []identity.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.n.opts.Clock.Now()
	keep := 0
	for i, id := range t.blamed {
		if now.Sub(t.blamedAt[i]) < blameFor {
			t.blamed[keep], t.blamedAt[keep] = id, t.blamedAt[i]
			keep++
		}
	}
	t.blamed, t.blamedAt = t.blamed[:keep], t.blamedAt[:keep]
	return append(slices.Clone(t.avoid), t.blamed...)
}

// regrow cuts the circuit after hop keep (unless it already ends there)
// and extends it along a new walk back to the tunnel's length.
func (t *Tunnel) regrow(ctx context.Context, keep int, cut bool) (*hopFailure, error) {
	if !cut {
		if hf, err := t.cutAfter(ctx, keep); hf != nil || err != nil {
			return hf, err
		}
	}
	t.path.Truncate(keep)
	t.path.DropAside()
	t.exitLost() // a new exit: no flow through the old one survives
	t.mu.Lock()
	t.hops, t.aside = t.hops[:keep], nil
	t.cutAt = 0 // the TRUNCATED just received is ours: the cut is done with
	kept := slices.Clone(t.hops)
	t.mu.Unlock()
	more, err := t.n.walkFrom(kept[keep-1].ID, kept, t.length-keep, t.last, t.avoidList())
	if err != nil {
		return nil, err
	}
	return t.extendAlong(ctx, more), nil
}

// cutAfter asks hop keep (1-based) to drop what lies beyond it and waits
// for its TRUNCATED. A hop that does not answer is blamed like one that
// fails an extension.
func (t *Tunnel) cutAfter(ctx context.Context, keep int) (*hopFailure, error) {
	select {
	case <-t.truncated:
	default:
	}
	if err := t.send(keep-1, onion.CmdTruncate, nil); err != nil {
		return nil, err
	}
	timer := t.n.opts.Clock.NewTimer(stepTimeout)
	defer timer.Stop()
	select {
	case <-t.truncated:
		return nil, nil
	case <-timer.C():
		t.mu.Lock()
		id := t.hops[keep-1].ID
		t.mu.Unlock()
		return &hopFailure{id: id, pos: keep, blame: []identity.ID{id},
			err: fmt.Errorf("node: hop %d (%s) did not answer TRUNCATE", keep, id.Short())}, nil
	case <-t.done:
		return nil, t.closedErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// restart rebuilds the tunnel on a fresh path, first hop included, under
// the same Tunnel (its owner keeps using it): a new circuit on the new
// first link replaces the old one, which is destroyed.
func (t *Tunnel) restart(ctx context.Context) (*hopFailure, error) {
	n := t.n
	path, err := n.walkFrom(n.id, nil, t.length, t.last, t.avoidList())
	if err != nil {
		return nil, err
	}
	if hf, err := t.replaceFirst(path[0]); hf != nil || err != nil {
		return hf, err
	}
	t.exitLost() // a fresh path has a new exit: no flow through the old one survives
	t.path.Truncate(0)
	t.path.DropAside()
	t.mu.Lock()
	t.aside = nil
	t.mu.Unlock()
	return t.extendAlong(ctx, path), nil
}

// truncatedBy handles TRUNCATED from hop (0-based): the part of the
// circuit beyond it is gone. An unsolicited one (a relay lost its next
// link, or says so) is hopLost(hop+1): a keep-exit repair in the
// background that blames the reporter and the hop beyond it and keeps
// only the hops before the reporter. A tunnel whose repair fails is
// closed: its owner builds another.
func (t *Tunnel) truncatedBy(hop int) {
	t.mu.Lock()
	t.cutAt = hop + 1
	start := t.built && !t.repairing && hop+1 < len(t.hops)
	t.mu.Unlock()
	select {
	case t.truncated <- struct{}{}:
	default:
	}
	if start {
		t.keepExitRepair(hop + 1)
	}
}

// hopLost reacts to hop (0-based) having stopped answering while every
// hop before it still answers: blame on that hop and on the one before
// it, keep the hops before both, and rejoin the exit through new hops
// (rejoin.go); a lost exit, or a rejoin that cannot be done, regrows the
// tunnel from the kept hops to a new exit (v2's repair). hop 0 lost means
// the first link or first hop is gone.
func (t *Tunnel) hopLost(hop int) {
	t.keepExitRepair(hop)
}

// startRepair runs repair(keep, blame) in the background and closes the
// tunnel if it fails.
func (t *Tunnel) startRepair(keep int, blame []identity.ID) {
	t.startRepairFunc(func(ctx context.Context) error { return t.repair(ctx, keep, blame) })
}

// repairTimeout bounds one repair in the background, like a service's
// build (core/ipservice's buildTimeout).
const repairTimeout = 30 * time.Second

// startRepairFunc runs repair in the background under repairTimeout
// and closes the tunnel if it fails.
func (t *Tunnel) startRepairFunc(repair func(ctx context.Context) error) {
	t.n.goRun(func() {
		ctx, cancel := context.WithTimeout(context.Background(), repairTimeout)
		defer cancel()
		go func() { // a stopping node does not wait for the repair's timeouts
			select {
			case <-t.n.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		start := t.n.opts.Clock.Now()
		err := repair(ctx)
		t.n.noteRepair(start, err) // linkstats.go
		if err == nil || errors.Is(err, errRepairRunning) || t.isClosed() {
			return
		}
		t.n.limiter.Warn(t.n.log, "repair", "tunnel repair failed; closing the tunnel", "err", err)
		t.Close()
	})
}

// isRepairing reports whether a repair is running.
func (t *Tunnel) isRepairing() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.repairing
}
