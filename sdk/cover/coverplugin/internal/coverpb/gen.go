// Package coverpb holds the generated gRPC code for the cover plugin's
// control service.
package coverpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative cover.proto
