//go:build !linux

package plugincheck

import (
	"errors"
	"os"
	"runtime"
)

// dataPair: the plugin data channel (sdk/internal/datachan) is built for
// Linux so far.
func dataPair() (parent, child *os.File, err error) {
	return nil, nil, errors.New("the plugin data channel is Linux-only so far; this is " + runtime.GOOS)
}
