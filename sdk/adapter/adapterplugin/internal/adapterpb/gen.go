// Package adapterpb holds the generated gRPC code for the adapter plugin's
// control service.
package adapterpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative adapter.proto
