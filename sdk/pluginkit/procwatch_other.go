//go:build !linux

package pluginkit

// processExit is not available here: callers poll.
func processExit(pid int) (exited <-chan struct{}, release func(), ok bool) {
	return nil, nil, false
}
