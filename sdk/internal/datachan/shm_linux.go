//go:build linux

package datachan

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ShmSupported reports whether this build can offer shared memory.
const ShmSupported = true

// NewShm creates, sizes, seals and maps the shared memory for one child,
// and the host → child ring's doorbell pair.
func NewShm(slots int) (*ShmSetup, error) {
	if slots <= 0 || slots&(slots-1) != 0 {
		return nil, fmt.Errorf("datachan: %d slots is not a power of two", slots)
	}
	fd, err := unix.MemfdCreate("tarzan-data", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("datachan: memfd_create: %w", err)
	}
	memfd := os.NewFile(uintptr(fd), "tarzan-data-shm")
	size := shmSize(slots)
	fail := func(err error) (*ShmSetup, error) {
		memfd.Close()
		return nil, err
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return fail(fmt.Errorf("datachan: sizing shared memory: %w", err))
	}
	// Sealed, the child can neither shrink the file under our mapping
	// (our next read would be SIGBUS) nor change the seals.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		return fail(fmt.Errorf("datachan: sealing shared memory: %w", err))
	}
	// MAP_POPULATE here and in the child: every page is faulted in (and
	// allocated) now, not on the first datagram through each slot. Without
	// it the first 1,024 crossings each way took a page fault on both
	// sides, which made a fresh channel slower than the socket framing.
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fail(fmt.Errorf("datachan: mmap: %w", err))
	}
	putLayout(mem, slots)
	p, err := NewPair()
	if err != nil {
		unix.Munmap(mem)
		return fail(err)
	}
	return &ShmSetup{mem: mem, slots: slots, memfd: memfd, bellHost: p.Host, bellChild: p.Child}, nil
}

func unmapMem(mem []byte) error {
	if mem == nil {
		return nil
	}
	return unix.Munmap(mem)
}

// ring writes one doorbell byte without blocking. A full socket already
// holds unread bells, so a bell that does not fit loses nothing.
func ringBell(c *net.UnixConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Write(func(fd uintptr) bool {
		_, _ = unix.Write(int(fd), []byte{1})
		return true
	})
}

// OpenChildShm maps the shared memory the host offered, if it did:
// (nil, nil) when it did not (an older host). data is the plain channel,
// which becomes the child → host ring's doorbell.
func OpenChildShm(data *net.UnixConn) (*Shared, error) {
	v := os.Getenv(EnvShm)
	if v == "" {
		return nil, nil
	}
	a, b, ok := strings.Cut(v, ",")
	memFD, err1 := strconv.Atoi(a)
	bellFD, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || memFD < childFD || bellFD < childFD {
		return nil, fmt.Errorf("datachan: bad %s=%q", EnvShm, v)
	}
	unix.CloseOnExec(memFD)
	unix.CloseOnExec(bellFD)
	var st unix.Stat_t
	if err := unix.Fstat(memFD, &st); err != nil {
		return nil, fmt.Errorf("datachan: shared memory: %w", err)
	}
	if st.Size < pageSize || st.Size > 1<<30 {
		return nil, fmt.Errorf("datachan: shared memory of %d bytes", st.Size)
	}
	mem, err := unix.Mmap(memFD, 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	unix.Close(memFD)
	if err != nil {
		unix.Close(bellFD)
		return nil, fmt.Errorf("datachan: mmap: %w", err)
	}
	slots, err := checkLayout(mem)
	if err != nil {
		unix.Munmap(mem)
		unix.Close(bellFD)
		return nil, err
	}
	bell, err := fileConn(os.NewFile(uintptr(bellFD), "tarzan-data-bell"))
	if err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	toChild, toHost := rings(mem, slots)
	return &Shared{
		mem: mem, unmap: unmapMem,
		in: Consumer{r: toChild}, out: Producer{r: toHost},
		inBell: bell, outBell: data,
	}, nil
}

func dupFD(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, childFD) }
