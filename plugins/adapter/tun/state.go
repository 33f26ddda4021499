package tun

// Crash safety. Before the adapter changes the system it records the
// change in a state file (write-ahead), and it removes the record after
// undoing the change. A plugin killed with SIGKILL loses its TUN device
// (the kernel deletes a non-persistent TUN when its last descriptor
// closes, and the device's addresses and routes with it), but the host
// routes it pinned on other interfaces for excluded prefixes stay: the
// state file lets the next Open, or the core through Cleanup, remove them.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

type state struct {
	Device string         `json:"device"`
	Addrs  []netip.Prefix `json:"addrs,omitempty"`
	Routes []route        `json:"routes,omitempty"`
}

func statePath(dir, device string) string {
	return filepath.Join(dir, "tun-"+device+".json")
}

// save writes the state atomically (temporary file, then rename).
func (s *state) save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("tun: write state file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("tun: write state file: %w", err)
	}
	return nil
}

func loadState(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("tun: state file %s: %w", path, err)
	}
	return &s, nil
}

// Cleanup removes what a previous run of this adapter left behind
// according to the state files in stateDir: its routes, addresses and
// TUN device, then the files. The core calls it after a killed plugin;
// Open does the same for its own device. It is a no-op when nothing is
// recorded, and must run in the network namespace the adapter ran in.
func Cleanup(stateDir string) error {
	paths, err := filepath.Glob(filepath.Join(stateDir, "tun-*.json"))
	if err != nil || len(paths) == 0 {
		return err
	}
	nl, err := openNetlink()
	if err != nil {
		return err
	}
	defer nl.close()
	var errs []error
	for _, p := range paths {
		errs = append(errs, cleanupFile(nl, p))
	}
	return errors.Join(errs...)
}

// cleanupFile undoes one state file; it is removed only if everything in
// it could be undone, so a failed cleanup can be retried.
func cleanupFile(nl *netlink, path string) error {
	s, err := loadState(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range s.Routes {
		if err := ignoreGone(nl.routeDel(r)); err != nil {
			errs = append(errs, fmt.Errorf("tun: cleanup: delete route %s: %w", r, err))
		}
	}
	if s.Device != "" {
		if idx, err := nl.linkIndex(s.Device); err == nil {
			for _, a := range s.Addrs {
				if err := ignoreGone(nl.addr(false, idx, a)); err != nil {
					errs = append(errs, fmt.Errorf("tun: cleanup: delete address %s: %w", a, err))
				}
			}
			if err := ignoreGone(nl.linkDel(s.Device)); err != nil {
				errs = append(errs, fmt.Errorf("tun: cleanup: delete device %s: %w", s.Device, err))
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
