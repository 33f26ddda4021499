// Package transportpb holds the generated gRPC code for the transport
// plugin's control service.
package transportpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative transport.proto
