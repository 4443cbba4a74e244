// Command goplugin is a real go-plugin v1.8.0 plugin for plugwire's interop suite. It serves
// grpctest.Test (Double, PrintKV, Bidirectional, Stream, PrintStdio, Panic) and proto.KV
// (in memory) from the repository's own protos.
//
// Environment (besides go-plugin's own PLUGIN_* variables):
//
//	GOPLUGIN_VERSIONS  app protocol versions served, e.g. "1,2" (default "1"); every version
//	                   serves the same services
//	GOPLUGIN_COOKIE    KEY=VALUE magic cookie (default BASIC_PLUGIN=hello)
//	GOPLUGIN_DEBUG     a provider name: serve in debug mode (go-plugin's ServeConfig.Test) and
//	                   print a TF_REATTACH_PROVIDERS line under that name, as `-debug` does
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"plugwire.test/interop/gen/grpctestpb"
	"plugwire.test/interop/gen/kvpb"
	"plugwire.test/interop/internal/shared"
)

type kvServer struct {
	kvpb.UnimplementedKVServer
	log hclog.Logger
	mu  sync.Mutex
	m   map[string][]byte
}

func (s *kvServer) Put(_ context.Context, req *kvpb.PutRequest) (*kvpb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[req.GetKey()] = append([]byte(nil), req.GetValue()...)
	s.log.Debug("kv put", "key", req.GetKey(), "bytes", len(req.GetValue()))
	return &kvpb.Empty{}, nil
}

func (s *kvServer) Get(_ context.Context, req *kvpb.GetRequest) (*kvpb.GetResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[req.GetKey()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "key not found: %q", req.GetKey())
	}
	s.log.Debug("kv get", "key", req.GetKey(), "bytes", len(v))
	return &kvpb.GetResponse{Value: v}, nil
}

type testServer struct {
	grpctestpb.UnimplementedTestServer
	log    hclog.Logger
	broker *plugin.GRPCBroker
}

func (s *testServer) Double(_ context.Context, req *grpctestpb.TestRequest) (*grpctestpb.TestResponse, error) {
	return &grpctestpb.TestResponse{Output: req.GetInput() * 2}, nil
}

func (s *testServer) PrintKV(_ context.Context, req *grpctestpb.PrintKVRequest) (*grpctestpb.PrintKVResponse, error) {
	var v interface{}
	switch x := req.GetValue().(type) {
	case *grpctestpb.PrintKVRequest_ValueString:
		v = x.ValueString
	case *grpctestpb.PrintKVRequest_ValueInt:
		v = x.ValueInt
	default:
		return nil, status.Errorf(codes.InvalidArgument, "PrintKV: no value for key %q", req.GetKey())
	}
	s.log.Info("PrintKV called", req.GetKey(), v)
	return &grpctestpb.PrintKVResponse{}, nil
}

func (s *testServer) Bidirectional(ctx context.Context, req *grpctestpb.BidirectionalRequest) (*grpctestpb.BidirectionalResponse, error) {
	conn, err := s.broker.Dial(req.GetId())
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "broker dial %d: %v", req.GetId(), err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := grpctestpb.NewPingPongClient(conn).Ping(ctx, &grpctestpb.PingRequest{})
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "PingPong.Ping on broker id %d: %v", req.GetId(), err)
	}
	if resp.GetMsg() != "pong" {
		return nil, status.Errorf(codes.Internal, "PingPong.Ping returned %q, want \"pong\"", resp.GetMsg())
	}
	s.log.Debug("bidirectional ping ok", "id", req.GetId())
	return &grpctestpb.BidirectionalResponse{Id: req.GetId()}, nil
}

func (s *testServer) Stream(stream grpctestpb.Test_StreamServer) error {
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&grpctestpb.TestResponse{Output: req.GetInput() * 2}); err != nil {
			return err
		}
	}
}

func (s *testServer) PrintStdio(_ context.Context, req *grpctestpb.PrintStdioRequest) (*emptypb.Empty, error) {
	// os.Stdout/os.Stderr are go-plugin's pipes by now: the bytes reach the host via GRPCStdio.
	if _, err := os.Stdout.Write(req.GetStdout()); err != nil {
		return nil, err
	}
	if _, err := os.Stderr.Write(req.GetStderr()); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

func (s *testServer) Panic(_ context.Context, req *grpctestpb.PanicRequest) (*emptypb.Empty, error) {
	msg := req.GetMessage()
	if msg == "" {
		msg = "goplugin: panic requested"
	}
	panic(msg)
}

func main() {
	cookieKey, cookieValue := shared.DefaultCookieKey, shared.DefaultCookieValue
	if c := os.Getenv("GOPLUGIN_COOKIE"); c != "" {
		var err error
		if cookieKey, cookieValue, err = shared.ParseCookie(c); err != nil {
			fmt.Fprintln(os.Stderr, "goplugin: GOPLUGIN_COOKIE:", err)
			os.Exit(2)
		}
	}
	vs := os.Getenv("GOPLUGIN_VERSIONS")
	if vs == "" {
		vs = "1"
	}
	versions, err := shared.ParseVersions(vs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goplugin: GOPLUGIN_VERSIONS:", err)
		os.Exit(2)
	}

	// The same settings as go-plugin's default server logger, but kept so handlers can log.
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "goplugin",
		Level:      hclog.Trace,
		Output:     os.Stderr,
		JSONFormat: true,
	})

	kv := &kvServer{log: logger.Named("kv"), m: map[string][]byte{}}
	newTest := func(b *plugin.GRPCBroker) grpctestpb.TestServer {
		return &testServer{log: logger.Named("grpctest"), broker: b}
	}
	vp := map[int]plugin.PluginSet{}
	for _, v := range versions {
		vp[v] = plugin.PluginSet{
			shared.PluginKV:       &shared.KVPlugin{Impl: kv},
			shared.PluginGRPCTest: &shared.TestPlugin{NewImpl: newTest},
		}
	}

	config := &plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			MagicCookieKey:   cookieKey,
			MagicCookieValue: cookieValue,
		},
		VersionedPlugins: vp,
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           logger,
	}
	if name := os.Getenv("GOPLUGIN_DEBUG"); name != "" {
		serveDebug(config, name)
		return
	}
	plugin.Serve(config)
	logger.Debug("plugin.Serve returned; exiting")
}

// serveDebug serves in go-plugin's test mode (ServeConfig.Test), the way a Terraform provider
// started with -debug does: no cookie check, no handshake line, and the reattach configuration
// printed as TF_REATTACH_PROVIDERS JSON (terraform-plugin-go's field names) for a host to
// attach to. It serves until SIGINT or SIGTERM, and never exits because a host detached.
func serveDebug(config *plugin.ServeConfig, name string) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reattachCh := make(chan *plugin.ReattachConfig)
	closeCh := make(chan struct{})
	config.Test = &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattachCh, CloseCh: closeCh}
	go plugin.Serve(config)
	rc := <-reattachCh
	type addr struct {
		Network string
		String  string
	}
	type entry struct {
		Protocol        string
		ProtocolVersion int
		Pid             int
		Test            bool
		Addr            addr
	}
	line, err := json.Marshal(map[string]entry{name: {
		Protocol:        string(rc.Protocol),
		ProtocolVersion: rc.ProtocolVersion,
		Pid:             rc.Pid,
		Test:            rc.Test,
		Addr:            addr{Network: rc.Addr.Network(), String: rc.Addr.String()},
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "goplugin: reattach config:", err)
		os.Exit(1)
	}
	fmt.Printf("Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:\n\n")
	fmt.Printf("\tTF_REATTACH_PROVIDERS='%s'\n\n", line)
	<-closeCh
}
