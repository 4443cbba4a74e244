// Package shared holds what the interop fixtures gohost and goplugin agree on: the default
// handshake, the plugin names and the go-plugin glue (plugin.GRPCPlugin) for the two services
// (proto.KV and grpctest.Test) generated from the repository's own protos.
package shared

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"plugwire.test/interop/gen/grpctestpb"
	"plugwire.test/interop/gen/kvpb"
)

// Default cookie, the same as go-plugin's examples/grpc.
const (
	DefaultCookieKey   = "BASIC_PLUGIN"
	DefaultCookieValue = "hello"
)

// Plugin names. Names never cross the wire for gRPC plugins: they only index the local maps.
const (
	PluginKV       = "kv"
	PluginGRPCTest = "grpctest"
)

// KVPlugin serves or consumes proto.KV.
type KVPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl kvpb.KVServer // plugin side only
}

func (p *KVPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	kvpb.RegisterKVServer(s, p.Impl)
	return nil
}

func (p *KVPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return kvpb.NewKVClient(c), nil
}

// TestClient is what a host gets when it dispenses PluginGRPCTest: the raw generated client
// plus the broker, which the Bidirectional call needs.
type TestClient struct {
	grpctestpb.TestClient
	Broker *plugin.GRPCBroker
}

// TestPlugin serves or consumes grpctest.Test. The plugin side is given the broker by
// NewImpl so Bidirectional can dial the host.
type TestPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	NewImpl func(*plugin.GRPCBroker) grpctestpb.TestServer // plugin side only
}

func (p *TestPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	grpctestpb.RegisterTestServer(s, p.NewImpl(b))
	return nil
}

func (p *TestPlugin) GRPCClient(_ context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &TestClient{TestClient: grpctestpb.NewTestClient(c), Broker: b}, nil
}

// ParseVersions parses "1,2" into []int{1, 2}.
func ParseVersions(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("bad version %q in %q", f, s)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no versions in %q", s)
	}
	return out, nil
}

// ParseCookie parses "KEY=VALUE".
func ParseCookie(s string) (key, value string, err error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf("cookie must be KEY=VALUE, got %q", s)
	}
	return k, v, nil
}
