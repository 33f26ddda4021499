//go:build linux

package datachan

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// pairShared builds both ends in one process, as the host and the child
// would (the child's from the descriptors the host passes).
func pairShared(t testing.TB, slots int) (host, child *Shared) {
	t.Helper()
	setup, err := NewShm(slots)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPair()
	if err != nil {
		t.Fatal(err)
	}
	childData, err := fileConn(p.Child)
	if err != nil {
		t.Fatal(err)
	}
	// What the child would inherit: dups of the memfd and bell.
	// What the child would inherit: copies of the memfd and bell, which
	// OpenChildShm takes over.
	files := setup.Files()
	t.Setenv(EnvShm, fmt.Sprintf("%d,%d", dupFile(t, files[0]), dupFile(t, files[1])))
	child, err = OpenChildShm(childData)
	if err != nil {
		t.Fatal(err)
	}
	setup.Started()
	host = setup.Host(p.Host)
	t.Cleanup(func() { host.Close(); child.Close() })
	return host, child
}

// One producer and one consumer on a tiny ring, so both sleep often:
// every datagram arrives, in order, with no lost wake-up (a lost one
// hangs the test). Run with -race.
func TestSharedNoLostWakeup(t *testing.T) {
	for _, slots := range []int{1, 2, 8} {
		t.Run(fmt.Sprint(slots), func(t *testing.T) {
			host, child := pairShared(t, slots)
			const total = 20000
			done := make(chan error, 1)
			go func() {
				want := 0
				for want < total {
					err := child.Recv(func(c *Consumer, avail int) int {
						for i := range avail {
							_, d, err := Datagram(c.Slot(i))
							if err != nil || int(d[0])|int(d[1])<<8 != want&0xffff {
								panic(fmt.Sprintf("datagram %d: %v %v", want, d, err))
							}
							want++
						}
						return avail
					})
					if err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for sent := 0; sent < total; {
				err := host.Send(func(p *Producer, free int) int {
					k := min(free, 3, total-sent)
					for i := range k {
						n := sent + i
						p.Put(i, addrA, []byte{byte(n), byte(n >> 8)})
					}
					sent += k
					return k
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("consumer stuck: lost wake-up")
			}
		})
	}
}

// Close unblocks a receiver waiting on an empty ring and a sender waiting
// on a full one, and later calls fail cleanly.
func TestSharedCloseWhileBlocked(t *testing.T) {
	host, _ := pairShared(t, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		errs <- host.Recv(func(*Consumer, int) int { return 0 })
	}()
	go func() {
		defer wg.Done()
		for {
			if err := host.Send(func(p *Producer, free int) int { return free }); err != nil {
				errs <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond) // both blocked by now (or soon)
	host.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrChanClosed) {
			t.Errorf("blocked call after Close: %v; want ErrChanClosed", err)
		}
	}
	if err := host.Send(func(*Producer, int) int { return 0 }); !errors.Is(err, ErrChanClosed) {
		t.Errorf("Send after Close: %v", err)
	}
}

// The peer dying (its sockets close) wakes a blocked receiver.
func TestSharedPeerGone(t *testing.T) {
	host, child := pairShared(t, 2)
	errc := make(chan error, 1)
	go func() { errc <- host.Recv(func(*Consumer, int) int { return 0 }) }()
	time.Sleep(20 * time.Millisecond)
	child.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrChanClosed) {
			t.Fatalf("Recv after the peer closed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Recv still blocked after the peer closed")
	}
}

// A child cannot shrink the sealed memory under the host's mapping.
func TestShmSealed(t *testing.T) {
	setup, err := NewShm(4)
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Abandon()
	if err := setup.memfd.Truncate(0); err == nil {
		t.Fatal("truncating the shared memory succeeded")
	}
}

// The child refuses memory whose header it does not understand.
func TestOpenChildShmRejectsBadLayout(t *testing.T) {
	setup, err := NewShm(4)
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Abandon()
	setup.mem[0] = 'X'
	p, err := NewPair()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Host.Close()
	childData, err := fileConn(p.Child)
	if err != nil {
		t.Fatal(err)
	}
	defer childData.Close()
	files := setup.Files()
	t.Setenv(EnvShm, fmt.Sprintf("%d,%d", dupFile(t, files[0]), dupFile(t, files[1])))
	if s, err := OpenChildShm(childData); err == nil {
		s.Close()
		t.Fatal("bad magic accepted")
	}
}

// dupFile returns a raw copy of f's descriptor (no *os.File, whose
// finalizer would close it after OpenChildShm has).
func dupFile(t testing.TB, f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var nfd int
	var derr error
	rc.Control(func(fd uintptr) { nfd, derr = dupFD(int(fd)) })
	if derr != nil {
		t.Fatal(derr)
	}
	return nfd
}
