// Command gobench is the Go side of plugwire's benchmark (bench/run.ts): a go-plugin v1.8.0 host
// that runs one measurement job and prints its result as one JSON line, and a go-plugin v1.8.0
// plugin that the benchmark's hosts start.
//
//	gobench plugin        serve grpctest.Test (Double, Bidirectional, Stream, PrintStdio),
//	                      proto.KV (in memory) and plugwire.bench.Bench/Echo (a bidirectional
//	                      stream of google.protobuf.BytesValue, hand-registered: no codegen)
//	gobench host JOB      run JOB (JSON, see bench/README.md) and print {"ok":true,...}
//
// Cookie BASIC_PLUGIN=hello, app protocol version 1: the same handshake as plugwire's bench
// plugin (bench/plugin.ts), so either host starts either plugin.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"plugwire.test/interop/gen/grpctestpb"
	"plugwire.test/interop/gen/kvpb"
	"plugwire.test/interop/internal/shared"
)

// ---------------------------------------------------------------------------------------------
// plugwire.bench.Bench: one bidirectional method, registered by hand.

const echoMethod = "/plugwire.bench.Bench/Echo"

var benchDesc = grpc.ServiceDesc{
	ServiceName: "plugwire.bench.Bench",
	HandlerType: (*interface{})(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "Echo",
		ServerStreams: true,
		ClientStreams: true,
		Handler: func(_ interface{}, stream grpc.ServerStream) error {
			for {
				m := new(wrapperspb.BytesValue)
				if err := stream.RecvMsg(m); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
				if err := stream.SendMsg(m); err != nil {
					return err
				}
			}
		},
	}},
	Metadata: "bench.proto",
}

// ---------------------------------------------------------------------------------------------
// Plugin role.

type testServer struct {
	grpctestpb.UnimplementedTestServer
	broker *plugin.GRPCBroker
}

func (s *testServer) Double(_ context.Context, req *grpctestpb.TestRequest) (*grpctestpb.TestResponse, error) {
	return &grpctestpb.TestResponse{Output: req.GetInput() * 2}, nil
}

func (s *testServer) Bidirectional(ctx context.Context, req *grpctestpb.BidirectionalRequest) (*grpctestpb.BidirectionalResponse, error) {
	conn, err := s.broker.Dial(req.GetId())
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "broker dial %d: %v", req.GetId(), err)
	}
	defer conn.Close()
	resp, err := grpctestpb.NewPingPongClient(conn).Ping(ctx, &grpctestpb.PingRequest{})
	if err != nil {
		return nil, err
	}
	if resp.GetMsg() != "pong" {
		return nil, status.Errorf(codes.Internal, "bad pong %q", resp.GetMsg())
	}
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
	if _, err := os.Stdout.Write(req.GetStdout()); err != nil {
		return nil, err
	}
	if _, err := os.Stderr.Write(req.GetStderr()); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

type kvServer struct {
	kvpb.UnimplementedKVServer
	mu sync.Mutex
	m  map[string][]byte
}

func (s *kvServer) Put(_ context.Context, req *kvpb.PutRequest) (*kvpb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[req.GetKey()] = req.GetValue()
	return &kvpb.Empty{}, nil
}

func (s *kvServer) Get(_ context.Context, req *kvpb.GetRequest) (*kvpb.GetResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[req.GetKey()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "key not found: %q", req.GetKey())
	}
	return &kvpb.GetResponse{Value: v}, nil
}

// benchConn is what the host dispenses: the raw connection and the broker.
type benchConn struct {
	conn   *grpc.ClientConn
	broker *plugin.GRPCBroker
}

type benchPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (benchPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	grpctestpb.RegisterTestServer(s, &testServer{broker: b})
	kvpb.RegisterKVServer(s, &kvServer{m: map[string][]byte{}})
	s.RegisterService(&benchDesc, struct{}{})
	return nil
}

func (benchPlugin) GRPCClient(_ context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &benchConn{conn: c, broker: b}, nil
}

var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   shared.DefaultCookieKey,
	MagicCookieValue: shared.DefaultCookieValue,
}

func servePlugin() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins:         plugin.PluginSet{"bench": benchPlugin{}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "gobench", Level: hclog.Info, Output: os.Stderr, JSONFormat: true,
		}),
	})
}

// ---------------------------------------------------------------------------------------------
// Host role.

// job is the benchmark's job description, shared by the Go, TypeScript and Python hosts.
type job struct {
	Kind  string   `json:"kind"` // cold | session | scale | spawn | cycle
	Cmd   []string `json:"cmd"`
	MTLS  bool     `json:"mtls"`
	Reps  int      `json:"reps"`
	N     int      `json:"n"` // scale: plugins at once
	Unary *struct {
		Warmup int `json:"warmup"`
		Calls  int `json:"calls"`
		Rounds int `json:"rounds"`
	} `json:"unary"`
	Throughput *struct {
		Concurrency []int `json:"concurrency"`
		Calls       int   `json:"calls"`
		Rounds      int   `json:"rounds"`
	} `json:"throughput"`
	Stream *struct {
		MsgBytes   int `json:"msg_bytes"`
		TotalBytes int `json:"total_bytes"`
		Rounds     int `json:"rounds"`
	} `json:"stream"`
	Stdio *struct {
		ChunkBytes int `json:"chunk_bytes"`
		TotalBytes int `json:"total_bytes"`
		Rounds     int `json:"rounds"`
	} `json:"stdio"`
	Broker *struct {
		Calls  int `json:"calls"`
		Warmup int `json:"warmup"`
	} `json:"broker"`
}

type counter struct{ n atomic.Int64 }

func (c *counter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

type session struct {
	client *plugin.Client
	bc     *benchConn
	test   grpctestpb.TestClient
	stdout *counter
	pid    int
}

func start(j *job) (*session, error) {
	out := &counter{}
	c := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          plugin.PluginSet{"bench": benchPlugin{}},
		Cmd:              exec.Command(j.Cmd[0], j.Cmd[1:]...),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         j.MTLS,
		SyncStdout:       out,
		SyncStderr:       io.Discard,
		StartTimeout:     time.Minute,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "gobench", Level: hclog.Error, Output: os.Stderr}),
	})
	rpc, err := c.Client()
	if err != nil {
		c.Kill()
		return nil, err
	}
	raw, err := rpc.Dispense("bench")
	if err != nil {
		c.Kill()
		return nil, err
	}
	bc := raw.(*benchConn)
	s := &session{client: c, bc: bc, test: grpctestpb.NewTestClient(bc.conn), stdout: out}
	if rc := c.ReattachConfig(); rc != nil {
		s.pid = rc.Pid
	}
	return s, nil
}

func (s *session) double() error {
	resp, err := s.test.Double(context.Background(), &grpctestpb.TestRequest{Input: 21})
	if err == nil && resp.GetOutput() != 42 {
		err = fmt.Errorf("Double(21) = %d", resp.GetOutput())
	}
	return err
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// procStatus reads VmRSS and VmHWM (kB) of a process ("self" for this one).
func procStatus(pid string) map[string]int {
	out := map[string]int{}
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		for _, key := range []string{"VmRSS", "VmHWM"} {
			if strings.HasPrefix(line, key+":") {
				f := strings.Fields(line)
				if len(f) >= 2 {
					out[key], _ = strconv.Atoi(f[1])
				}
			}
		}
	}
	return out
}

// cpuMs is the CPU time (ms) the process has used so far, all threads, from schedstat (ns).
func cpuMs(pid int) float64 {
	dirs, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	var ns int64
	for _, d := range dirs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, d.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			v, _ := strconv.ParseInt(f[0], 10, 64)
			ns += v
		}
	}
	return float64(ns) / 1e6
}

func runCold(j *job) (map[string]interface{}, error) {
	var total, connect, cpu []float64
	for i := 0; i < j.Reps; i++ {
		t0 := time.Now()
		s, err := start(j)
		if err != nil {
			return nil, err
		}
		t1 := time.Now()
		if err := s.double(); err != nil {
			s.client.Kill()
			return nil, err
		}
		t2 := time.Now()
		total, connect = append(total, ms(t2.Sub(t0))), append(connect, ms(t1.Sub(t0)))
		cpu = append(cpu, cpuMs(s.pid))
		s.client.Kill()
	}
	return map[string]interface{}{"cold_ms": total, "connect_ms": connect, "plugin_cpu_ms": cpu}, nil
}

func throughput(s *session, conc, calls int) (float64, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	t0 := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(calls) {
				if err := s.double(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(calls) / time.Since(t0).Seconds(), nil
}

func echo(s *session, msgBytes, total int) (float64, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := s.bc.conn.NewStream(ctx, &benchDesc.Streams[0], echoMethod)
	if err != nil {
		return 0, err
	}
	payload := make([]byte, msgBytes)
	n := total / msgBytes
	t0 := time.Now()
	sendErr := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := stream.SendMsg(&wrapperspb.BytesValue{Value: payload}); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- stream.CloseSend()
	}()
	got := 0
	for {
		m := new(wrapperspb.BytesValue)
		if err := stream.RecvMsg(m); err == io.EOF {
			break
		} else if err != nil {
			return 0, err
		}
		got += len(m.GetValue())
	}
	if err := <-sendErr; err != nil {
		return 0, err
	}
	if got != n*msgBytes {
		return 0, fmt.Errorf("echo: got %d bytes, want %d", got, n*msgBytes)
	}
	return float64(got) / 1e6 / time.Since(t0).Seconds(), nil
}

func stdio(s *session, chunk, total int) (float64, error) {
	payload := make([]byte, chunk)
	for i := range payload {
		payload[i] = 'x'
	}
	base := s.stdout.n.Load()
	want := base + int64(total/chunk*chunk)
	t0 := time.Now()
	for sent := 0; sent+chunk <= total; sent += chunk {
		if _, err := s.test.PrintStdio(context.Background(), &grpctestpb.PrintStdioRequest{Stdout: payload}); err != nil {
			return 0, err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.stdout.n.Load() < want {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("stdio: %d of %d bytes arrived", s.stdout.n.Load()-base, want-base)
		}
		time.Sleep(200 * time.Microsecond)
	}
	return float64(want-base) / 1e6 / time.Since(t0).Seconds(), nil
}

type pingPong struct {
	grpctestpb.UnimplementedPingPongServer
}

func (pingPong) Ping(context.Context, *grpctestpb.PingRequest) (*grpctestpb.PongResponse, error) {
	return &grpctestpb.PongResponse{Msg: "pong"}, nil
}

// brokerRound is go-plugin's callback pattern: a fresh broker id served by the host, a call
// that makes the plugin dial it and call back, and the server stopped afterwards (untimed).
func brokerRound(s *session) (time.Duration, error) {
	t0 := time.Now()
	id := s.bc.broker.NextId()
	served := make(chan *grpc.Server, 1)
	go s.bc.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		srv := grpc.NewServer(opts...)
		grpctestpb.RegisterPingPongServer(srv, pingPong{})
		served <- srv
		return srv
	})
	resp, err := s.test.Bidirectional(context.Background(), &grpctestpb.BidirectionalRequest{Id: id})
	d := time.Since(t0)
	if err == nil && resp.GetId() != id {
		err = fmt.Errorf("Bidirectional(%d) returned %d", id, resp.GetId())
	}
	select {
	case srv := <-served:
		srv.Stop()
	case <-time.After(5 * time.Second):
	}
	return d, err
}

func runSession(j *job) (map[string]interface{}, error) {
	s, err := start(j)
	if err != nil {
		return nil, err
	}
	defer s.client.Kill()
	if err := s.double(); err != nil {
		return nil, err
	}
	res := map[string]interface{}{}
	if u := j.Unary; u != nil {
		for i := 0; i < u.Warmup; i++ {
			if err := s.double(); err != nil {
				return nil, err
			}
		}
		res["plugin_idle"] = procStatus(strconv.Itoa(s.pid))
		samples := make([]float64, 0, u.Calls*u.Rounds)
		pluginCPU, hostCPU := cpuMs(s.pid), cpuMs(os.Getpid())
		for r := 0; r < u.Rounds; r++ {
			for i := 0; i < u.Calls; i++ {
				t0 := time.Now()
				if err := s.double(); err != nil {
					return nil, err
				}
				samples = append(samples, us(time.Since(t0)))
			}
		}
		res["unary_us"] = samples
		n := float64(len(samples))
		res["unary_plugin_cpu_us"] = (cpuMs(s.pid) - pluginCPU) * 1000 / n
		res["unary_host_cpu_us"] = (cpuMs(os.Getpid()) - hostCPU) * 1000 / n
	}
	if t := j.Throughput; t != nil {
		by := map[string][]float64{}
		for _, c := range t.Concurrency {
			for r := 0; r < t.Rounds; r++ {
				v, err := throughput(s, c, t.Calls)
				if err != nil {
					return nil, err
				}
				by[strconv.Itoa(c)] = append(by[strconv.Itoa(c)], v)
			}
		}
		res["throughput"] = by
	}
	if st := j.Stream; st != nil {
		var v []float64
		for r := 0; r < st.Rounds; r++ {
			x, err := echo(s, st.MsgBytes, st.TotalBytes)
			if err != nil {
				return nil, fmt.Errorf("stream: %w", err)
			}
			v = append(v, x)
		}
		res["stream_mbps"] = v
	}
	if st := j.Stdio; st != nil {
		var v []float64
		for r := 0; r < st.Rounds; r++ {
			x, err := stdio(s, st.ChunkBytes, st.TotalBytes)
			if err != nil {
				return nil, err
			}
			v = append(v, x)
		}
		res["stdio_mbps"] = v
	}
	if b := j.Broker; b != nil {
		var v []float64
		for i := 0; i < b.Warmup+b.Calls; i++ {
			d, err := brokerRound(s)
			if err != nil {
				return nil, fmt.Errorf("broker: %w", err)
			}
			if i >= b.Warmup {
				v = append(v, us(d))
			}
		}
		res["broker_us"] = v
	}
	res["plugin_peak"] = procStatus(strconv.Itoa(s.pid))
	return res, nil
}

func runScale(j *job) (map[string]interface{}, error) {
	sessions := make([]*session, j.N)
	errs := make([]error, j.N)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < j.N; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := start(j)
			if err == nil {
				err = s.double()
			}
			sessions[i], errs[i] = s, err
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(t0)
	host := procStatus("self")
	pluginsRSS := 0
	for _, s := range sessions {
		if s != nil {
			pluginsRSS += procStatus(strconv.Itoa(s.pid))["VmRSS"]
		}
	}
	var kw sync.WaitGroup
	for _, s := range sessions {
		if s != nil {
			kw.Add(1)
			go func(s *session) { defer kw.Done(); s.client.Kill() }(s)
		}
	}
	kw.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return map[string]interface{}{"start_all_ms": ms(elapsed), "host": host, "plugins_rss_kb": pluginsRSS}, nil
}

// runCycle is what Terraform does to a provider during one plan, Reps times: (start, 3 calls,
// Kill) three times. Kill is go-plugin's graceful stop: the Shutdown RPC, then waiting for the
// process to end (up to 2 s before it kills it); kill_ms is that part alone.
func runCycle(j *job) (map[string]interface{}, error) {
	var cycles, kills []float64
	for i := 0; i < j.Reps; i++ {
		t0 := time.Now()
		for k := 0; k < 3; k++ {
			s, err := start(j)
			if err != nil {
				return nil, err
			}
			for c := 0; c < 3; c++ {
				if err := s.double(); err != nil {
					s.client.Kill()
					return nil, err
				}
			}
			k0 := time.Now()
			s.client.Kill()
			kills = append(kills, ms(time.Since(k0)))
		}
		cycles = append(cycles, ms(time.Since(t0)))
	}
	return map[string]interface{}{"cycle_ms": cycles, "kill_ms": kills}, nil
}

// runSpawn times a bare process start: spawn to its first stdout line.
func runSpawn(j *job) (map[string]interface{}, error) {
	var v []float64
	for i := 0; i < j.Reps; i++ {
		cmd := exec.Command(j.Cmd[0], j.Cmd[1:]...)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
			return nil, err
		}
		v = append(v, ms(time.Since(t0)))
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
	return map[string]interface{}{"spawn_ms": v}, nil
}

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "plugin" {
		servePlugin()
		return
	}
	if len(os.Args) != 3 || os.Args[1] != "host" {
		fmt.Fprintln(os.Stderr, "usage: gobench plugin | gobench host JOB_JSON")
		os.Exit(2)
	}
	var j job
	if err := json.Unmarshal([]byte(os.Args[2]), &j); err != nil {
		fmt.Fprintln(os.Stderr, "gobench: job:", err)
		os.Exit(2)
	}
	var res map[string]interface{}
	var err error
	switch j.Kind {
	case "cold":
		res, err = runCold(&j)
	case "session":
		res, err = runSession(&j)
	case "scale":
		res, err = runScale(&j)
	case "spawn":
		res, err = runSpawn(&j)
	case "cycle":
		res, err = runCycle(&j)
	default:
		err = fmt.Errorf("unknown job kind %q", j.Kind)
	}
	if err != nil {
		b, _ := json.Marshal(map[string]interface{}{"ok": false, "error": err.Error()})
		fmt.Println(string(b))
		os.Exit(1)
	}
	res["ok"] = true
	b, err := json.Marshal(res)
	if err != nil {
		fmt.Println(`{"ok":false,"error":"marshal"}`)
		os.Exit(1)
	}
	fmt.Println(string(b))
}
