// Package copybuf copies a byte stream between a kernel socket and a
// userspace stack's connection, with large reads while the stream is
// busy.
//
// io.Copy reads 32 KiB at a time (and *net.TCPConn's ReadFrom, which
// io.Copy prefers, uses its own 32 KiB): a bulk download then costs one
// system call and one call into gVisor's TCP per 32 KiB at each adapter.
// With GRO in front of the stacks a stack's receive queue holds 64 KiB
// segments, and a kernel socket under load holds more than 32 KiB, so
// one Read often has more to give. Copy reads up to Large bytes while
// reads keep coming back with at least Small/2, and 32 KiB otherwise,
// so an idle connection (whose last read was short) waits holding the
// small buffer only: a thousand idle flows cost what io.Copy's did.
package copybuf

import (
	"errors"
	"io"
	"sync"
)

const (
	// Small is io.Copy's buffer, used while the stream is quiet.
	Small = 32 << 10
	// Large is the buffer of a busy stream, from a pool.
	Large = 256 << 10
)

var (
	smallPool = sync.Pool{New: func() any { b := make([]byte, Small); return &b }}
	largePool = sync.Pool{New: func() any { b := make([]byte, Large); return &b }}
)

var errInvalidWrite = errors.New("copybuf: invalid write result")

// Copy copies from src to dst until EOF or an error, as io.Copy does
// (EOF is not an error), but never through dst's ReadFrom or src's
// WriteTo, which would pick their own 32 KiB buffers.
func Copy(dst io.Writer, src io.Reader) (written int64, err error) {
	small := smallPool.Get().(*[]byte)
	defer smallPool.Put(small)
	var large *[]byte
	defer func() {
		if large != nil {
			largePool.Put(large)
		}
	}()
	buf := *small
	for {
		nr, er := src.Read(buf)
		if nr > 0 {
			nw, ew := dst.Write(buf[:nr])
			if nw < 0 || nr < nw {
				nw = 0
				if ew == nil {
					ew = errInvalidWrite
				}
			}
			written += int64(nw)
			if ew != nil {
				return written, ew
			}
			if nr != nw {
				return written, io.ErrShortWrite
			}
		}
		if er != nil {
			if er == io.EOF {
				return written, nil
			}
			return written, er
		}
		switch {
		case nr >= Small/2 && large == nil: // busy: read more at once
			large = largePool.Get().(*[]byte)
			buf = *large
		case nr < Small/2 && large != nil: // quiet: give the large one back
			largePool.Put(large)
			large, buf = nil, *small
		}
	}
}
