package node

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/onion"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

// A node refuses to start where onion cells would be encrypted in variable
// time, unless told it is a test or an emulator. The CPU without AES
// instructions is played by GODEBUG=cpu.aes=off in a child process.
func TestRefusesVariableTimeAES(t *testing.T) {
	if os.Getenv("NODE_AES_CHILD") == "" {
		if !onion.HardwareAES() {
			t.Skip("this CPU has no AES instructions to switch off")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestRefusesVariableTimeAES$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "NODE_AES_CHILD=1", "GODEBUG=cpu.aes=off")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "refused: true") {
			t.Fatalf("child: err %v, output:\n%s", err, out)
		}
		return
	}
	if onion.HardwareAES() {
		t.Fatal("GODEBUG=cpu.aes=off did not switch AES off")
	}
	id, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Identity: id, Transport: transporttest.NewNetwork().NewTransport(), Listen: addrOf(0),
		Discovery: newListDiscovery(nil), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	_, err = New(o)
	if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "AES") {
		t.Fatalf("New without AES instructions = %v, want ErrOptions about AES", err)
	}
	o.AllowVariableTimeAES = true
	if _, err := New(o); err != nil {
		t.Fatalf("New with AllowVariableTimeAES: %v", err)
	}
	fmt.Println("refused: true")
}
