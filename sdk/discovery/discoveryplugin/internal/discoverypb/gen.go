// Package discoverypb holds the generated gRPC code for the discovery plugin's
// control service.
package discoverypb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative discovery.proto
