// Command tarzan-xor-transport is an example third-party Tarzan transport,
// built as its own binary and run by a node as a child process.
//
// It sends every link frame as one UDP datagram whose bytes are XORed
// with a repeating key. This is a toy obfuscation for teaching the plugin
// SDK, NOT security: XOR with a fixed key hides nothing from anyone who
// looks (the node's own link encryption is what protects frames). Both
// ends must use the same key.
//
// Options ([transport.options] in node.toml):
//
//	key  the XOR key, a non-empty string (required)
package main

import (
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport/transportplugin"
)

func main() {
	pluginkit.Declare(OptionSchema) // `tarzan validate` learns the options from it
	transportplugin.Serve(New)
}
