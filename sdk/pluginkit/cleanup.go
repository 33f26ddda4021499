package pluginkit

import "sync"

// live holds every supervisor not yet closed, for CleanupAll.
var live struct {
	sync.Mutex
	set map[*Supervisor]struct{}
}

func register(s *Supervisor) {
	live.Lock()
	defer live.Unlock()
	if live.set == nil {
		live.set = make(map[*Supervisor]struct{})
	}
	live.set[s] = struct{}{}
}

func unregister(s *Supervisor) {
	live.Lock()
	defer live.Unlock()
	delete(live.set, s)
}

// CleanupAll closes every supervisor in this process and kills its child.
// Call it when the host exits, including on SIGINT/SIGTERM:
//
//	defer pluginkit.CleanupAll()
//
// It is the counterpart of go-plugin's CleanupClients, which we cannot use
// directly: a bare Kill would be undone by the supervisor's restart. As a
// second line of defence a child exits by itself when its parent dies (see
// Serve), so even a SIGKILLed host leaves no orphans for long.
func CleanupAll() {
	live.Lock()
	all := make([]*Supervisor, 0, len(live.set))
	for s := range live.set {
		all = append(all, s)
	}
	live.Unlock()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Add(1)
		go func() { defer wg.Done(); s.Close() }()
	}
	wg.Wait()
}
