// Package transportpb holds the generated gRPC code for the transport
// plugin's control service.
package transportpb

// Regenerate after editing transport.proto (the versions the files were
// made with; protoc from Debian's protobuf-compiler 3.21.12):
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
//	go generate ./sdk/transport/transportplugin/internal/transportpb
//
//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative transport.proto
