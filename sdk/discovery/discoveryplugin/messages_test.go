package discoveryplugin_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoveryplugin"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoverytest"
	"github.com/tarzan-net/tarzan/sdk/internal/plugintest"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// mirror is the child's messaging backend: Start sends "hello" to
// 127.0.0.1:9 and every delivered message goes back to its sender with
// "re:" in front, so the host sees both directions.
type mirror struct{ *discoverytest.Messaging }

func (m mirror) Start(self []byte) error {
	m.Send(discovery.Message{Addr: netip.MustParseAddrPort("127.0.0.1:9"), Transport: "udp", Data: []byte("hello")})
	return m.Messaging.Start(self)
}

func (m mirror) Deliver(msgs []discovery.Message) error {
	for _, msg := range msgs {
		m.Send(discovery.Message{Addr: msg.Addr, Transport: msg.Transport, Data: append([]byte("re:"), msg.Data...)})
	}
	return m.Messaging.Deliver(msgs)
}

func outbox(t *testing.T, m discovery.Messenger) []discovery.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := m.Outbox(ctx)
	if err != nil {
		t.Fatalf("Outbox: %v", err)
	}
	return msgs
}

func launchMirror(t *testing.T) (discovery.Discovery, discovery.Messenger) {
	t.Helper()
	d, err := discoveryplugin.Launch(plugintest.Launcher(t, "mirror"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	m, ok := d.(discovery.Messenger)
	if !ok {
		t.Fatal("host-side client is not a discovery.Messenger")
	}
	if err := d.Start([]byte("self")); err != nil {
		t.Fatal(err)
	}
	return d, m
}

func TestOutboxDeliverRoundTrip(t *testing.T) {
	d, m := launchMirror(t)
	msgs := outbox(t, m)
	if len(msgs) != 1 || string(msgs[0].Data) != "hello" || msgs[0].Addr.String() != "127.0.0.1:9" || msgs[0].Transport != "udp" {
		t.Fatalf("after Start, Outbox = %+v", msgs)
	}
	// Deliver only queues; the replies come back through Outbox, in order.
	src := netip.MustParseAddrPort("[::1]:7000")
	const n = 20
	for i := range n {
		data := []byte(fmt.Sprintf("m%02d", i))
		if err := m.Deliver([]discovery.Message{{Addr: src, Transport: "kcp", Data: data}}); err != nil {
			t.Fatal(err)
		}
		data[0] = 'X' // the caller may reuse its buffer after Deliver
	}
	var got []discovery.Message
	for len(got) < n {
		got = append(got, outbox(t, m)...)
	}
	for i, msg := range got {
		if want := fmt.Sprintf("re:m%02d", i); string(msg.Data) != want || msg.Addr != src || msg.Transport != "kcp" {
			t.Fatalf("reply %d = %+v (%q), want %q to %v over kcp", i, msg, msg.Data, want, src)
		}
	}
	if dropped := d.(interface{ DeliverDropped() uint64 }).DeliverDropped(); dropped != 0 {
		t.Errorf("DeliverDropped = %d", dropped)
	}
}

func TestOutboxSurvivesRestart(t *testing.T) {
	d, m := launchMirror(t)
	outbox(t, m) // the first child's hello
	got := make(chan []discovery.Message, 1)
	go func() { got <- outbox(t, m) }()
	time.Sleep(50 * time.Millisecond)
	plugintest.KillAndWait(t, d.(pluginkit.Reporter))
	// The new child is started again and says hello: the pending Outbox
	// returns it.
	select {
	case msgs := <-got:
		if len(msgs) != 1 || string(msgs[0].Data) != "hello" {
			t.Fatalf("after restart, Outbox = %+v", msgs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pending Outbox did not return after restart")
	}
	// Deliver reaches the new child.
	src := netip.MustParseAddrPort("127.0.0.2:1")
	if err := m.Deliver([]discovery.Message{{Addr: src, Data: []byte("again")}}); err != nil {
		t.Fatal(err)
	}
	if msgs := outbox(t, m); len(msgs) != 1 || string(msgs[0].Data) != "re:again" {
		t.Fatalf("after restart, reply = %+v", msgs)
	}
}

func TestNoMessagingBackend(t *testing.T) {
	d, err := discoveryplugin.Launch(plugintest.Launcher(t, "echo"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	m := d.(discovery.Messenger)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := m.Outbox(ctx); !errors.Is(err, discovery.ErrNoMessaging) {
		t.Fatalf("Outbox of a non-messaging backend: %v; want discovery.ErrNoMessaging", err)
	}
	if err := m.Deliver([]discovery.Message{{Addr: netip.MustParseAddrPort("127.0.0.1:1"), Data: []byte("x")}}); !errors.Is(err, discovery.ErrNoMessaging) {
		t.Fatalf("Deliver to a non-messaging backend: %v; want discovery.ErrNoMessaging", err)
	}
}

func TestCloseUnblocksOutbox(t *testing.T) {
	d, m := launchMirror(t)
	outbox(t, m)
	errc := make(chan error, 1)
	go func() { _, err := m.Outbox(context.Background()); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	d.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, discovery.ErrClosed) {
			t.Fatalf("Outbox after Close: %v; want discovery.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock Outbox")
	}
	if err := m.Deliver(nil); !errors.Is(err, discovery.ErrClosed) {
		t.Fatalf("Deliver after Close: %v", err)
	}
}
