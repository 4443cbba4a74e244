// Command gohost is a real go-plugin v1.8.0 host for plugwire's interop suite. It launches a
// plugin (or reattaches to one), runs one mode and prints its results as JSON lines on stdout.
// Its own log, including every log line forwarded from the plugin's stderr, is hclog JSON at
// trace level on stderr. See tests/interop/README.md for the flags and the output format.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"plugwire.test/interop/gen/grpctestpb"
	"plugwire.test/interop/gen/kvpb"
	"plugwire.test/interop/internal/shared"
)

const usage = `usage: gohost [flags] -mode MODE [ARGS]

modes:
  kv-put KEY VALUE     dispense "kv" (proto.KV) and Put
  kv-get KEY           dispense "kv" and Get; prints the value
  kv-roundtrip KEY VALUE  Put then Get in one plugin session
  ping                 client.Ping() (grpc.health.v1 Check "plugin")
  grpctest             run the grpctest.Test steps (see -steps)
  panic                call Test.Panic and wait for the plugin to exit
  reattach-print       print the ReattachConfig as JSON
  shutdown             only connect, then Kill (every mode ends with Kill)

With -hold, gohost prints {"type":"holding"} after the mode's output and waits for EOF on its
stdin before Kill, so another host can reattach to the plugin meanwhile.

flags:
`

// out prints one JSON object per line on stdout.
var outMu sync.Mutex

func out(v map[string]interface{}) {
	outMu.Lock()
	defer outMu.Unlock()
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"type":"error","error":%q}`, err.Error()))
	}
	os.Stdout.Write(append(b, '\n'))
}

// lockedBuffer collects SyncStdout / SyncStderr, written from go-plugin's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logSink passes the host's hclog output to stderr and notices go-plugin's
// "plugin failed to exit gracefully" warning.
type logSink struct {
	w        io.Writer
	notGrace atomic.Bool
}

func (s *logSink) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("plugin failed to exit gracefully")) {
		s.notGrace.Store(true)
	}
	return s.w.Write(p)
}

// reattachJSON is the JSON form of plugin.ReattachConfig used by -reattach and reattach-print.
type reattachJSON struct {
	Protocol        string `json:"protocol"`
	ProtocolVersion int    `json:"protocol_version"`
	Network         string `json:"network"`
	Addr            string `json:"addr"`
	Pid             int    `json:"pid"`
	Test            bool   `json:"test"`
}

func parseReattach(s string) (*plugin.ReattachConfig, error) {
	var r reattachJSON
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("-reattach: %w", err)
	}
	var addr net.Addr
	switch r.Network {
	case "unix":
		addr = &net.UnixAddr{Net: "unix", Name: r.Addr}
	case "tcp":
		a, err := net.ResolveTCPAddr("tcp", r.Addr)
		if err != nil {
			return nil, fmt.Errorf("-reattach: %w", err)
		}
		addr = a
	default:
		return nil, fmt.Errorf("-reattach: network must be unix or tcp, got %q", r.Network)
	}
	return &plugin.ReattachConfig{
		Protocol:        plugin.Protocol(r.Protocol),
		ProtocolVersion: r.ProtocolVersion,
		Addr:            addr,
		Pid:             r.Pid,
		Test:            r.Test,
	}, nil
}

type host struct {
	client  *plugin.Client
	cmd     *exec.Cmd
	rpc     plugin.ClientProtocol
	stdout  *lockedBuffer
	stderr  *lockedBuffer
	sink    *logSink
	timeout time.Duration
	failed  bool
}

func (h *host) fail(step string, err error) {
	h.failed = true
	out(map[string]interface{}{"type": "error", "step": step, "error": err.Error()})
	fmt.Fprintf(os.Stderr, "gohost: %s: %v\n", step, err)
}

func (h *host) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), h.timeout)
}

func (h *host) dispense(name string) (interface{}, error) {
	raw, err := h.rpc.Dispense(name)
	if err != nil {
		return nil, fmt.Errorf("dispense %q: %w", name, err)
	}
	return raw, nil
}

func (h *host) kv() (kvpb.KVClient, error) {
	raw, err := h.dispense(shared.PluginKV)
	if err != nil {
		return nil, err
	}
	return raw.(kvpb.KVClient), nil
}

func (h *host) kvPut(key, value string) bool {
	kv, err := h.kv()
	if err != nil {
		h.fail("kv-put", err)
		return false
	}
	ctx, cancel := h.ctx()
	defer cancel()
	if _, err := kv.Put(ctx, &kvpb.PutRequest{Key: key, Value: []byte(value)}); err != nil {
		h.fail("kv-put", err)
		return false
	}
	out(map[string]interface{}{"type": "kv-put", "ok": true, "key": key})
	return true
}

func (h *host) kvGet(key string) bool {
	kv, err := h.kv()
	if err != nil {
		h.fail("kv-get", err)
		return false
	}
	ctx, cancel := h.ctx()
	defer cancel()
	resp, err := kv.Get(ctx, &kvpb.GetRequest{Key: key})
	if err != nil {
		h.fail("kv-get", err)
		return false
	}
	out(map[string]interface{}{"type": "kv-get", "ok": true, "key": key,
		"value": string(resp.GetValue()), "value_b64": resp.GetValue()})
	return true
}

type pingPong struct {
	grpctestpb.UnimplementedPingPongServer
	calls atomic.Int32
}

func (p *pingPong) Ping(context.Context, *grpctestpb.PingRequest) (*grpctestpb.PongResponse, error) {
	p.calls.Add(1)
	return &grpctestpb.PongResponse{Msg: "pong"}, nil
}

var allSteps = []string{"ping", "double", "printkv", "bidirectional", "stdio", "stream"}

const (
	stdioOut = "hello\nworld!"
	stdioErr = "and some error\n messages!"
)

func (h *host) grpctest(steps []string) {
	raw, err := h.dispense(shared.PluginGRPCTest)
	if err != nil {
		h.fail("dispense", err)
		return
	}
	tc := raw.(*shared.TestClient)
	for _, step := range steps {
		func() {
			ctx, cancel := h.ctx()
			defer cancel()
			switch step {
			case "ping":
				if err := h.rpc.Ping(); err != nil {
					h.fail(step, err)
					return
				}
				out(map[string]interface{}{"type": "ping", "ok": true})
			case "double":
				resp, err := tc.Double(ctx, &grpctestpb.TestRequest{Input: 21})
				if err != nil {
					h.fail(step, err)
					return
				}
				if resp.GetOutput() != 42 {
					h.fail(step, fmt.Errorf("Double(21) = %d, want 42", resp.GetOutput()))
					return
				}
				out(map[string]interface{}{"type": "double", "ok": true, "input": 21, "output": resp.GetOutput()})
			case "printkv":
				reqs := []*grpctestpb.PrintKVRequest{
					{Key: "foo", Value: &grpctestpb.PrintKVRequest_ValueString{ValueString: "bar"}},
					{Key: "foo", Value: &grpctestpb.PrintKVRequest_ValueInt{ValueInt: 12}},
				}
				for _, r := range reqs {
					if _, err := tc.PrintKV(ctx, r); err != nil {
						h.fail(step, err)
						return
					}
				}
				out(map[string]interface{}{"type": "printkv", "ok": true, "calls": []string{"foo=bar", "foo=12"}})
			case "bidirectional":
				pp := &pingPong{}
				id := tc.Broker.NextId()
				go tc.Broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
					s := grpc.NewServer(opts...)
					grpctestpb.RegisterPingPongServer(s, pp)
					return s
				})
				resp, err := tc.Bidirectional(ctx, &grpctestpb.BidirectionalRequest{Id: id})
				if err != nil {
					h.fail(step, err)
					return
				}
				if resp.GetId() != id || pp.calls.Load() < 1 {
					h.fail(step, fmt.Errorf("Bidirectional(%d) returned id %d after %d pings", id, resp.GetId(), pp.calls.Load()))
					return
				}
				out(map[string]interface{}{"type": "bidirectional", "ok": true, "id": id,
					"returned_id": resp.GetId(), "pings": pp.calls.Load()})
			case "stdio":
				if _, err := tc.PrintStdio(ctx, &grpctestpb.PrintStdioRequest{
					Stdout: []byte(stdioOut), Stderr: []byte(stdioErr)}); err != nil {
					h.fail(step, err)
					return
				}
				// GRPCStdio is asynchronous: wait for the bytes to arrive.
				deadline := time.Now().Add(5 * time.Second)
				for time.Now().Before(deadline) &&
					(len(h.stdout.String()) < len(stdioOut) || len(h.stderr.String()) < len(stdioErr)) {
					time.Sleep(20 * time.Millisecond)
				}
				gotOut, gotErr := h.stdout.String(), h.stderr.String()
				res := map[string]interface{}{"type": "stdio", "ok": gotOut == stdioOut && gotErr == stdioErr,
					"stdout": gotOut, "stderr": gotErr}
				if gotOut != stdioOut || gotErr != stdioErr {
					h.fail(step, fmt.Errorf("stdio: got stdout %q stderr %q, want %q %q", gotOut, gotErr, stdioOut, stdioErr))
					out(res)
					return
				}
				out(res)
			case "stream":
				st, err := tc.Stream(ctx)
				if err != nil {
					h.fail(step, err)
					return
				}
				var ins, outs []int32
				for i := int32(1); i <= 5; i++ {
					if err := st.Send(&grpctestpb.TestRequest{Input: i}); err != nil {
						h.fail(step, err)
						return
					}
					resp, err := st.Recv()
					if err != nil {
						h.fail(step, err)
						return
					}
					ins, outs = append(ins, i), append(outs, resp.GetOutput())
					if resp.GetOutput() != 2*i {
						h.fail(step, fmt.Errorf("stream: input %d gave %d", i, resp.GetOutput()))
						return
					}
				}
				if err := st.CloseSend(); err != nil {
					h.fail(step, err)
					return
				}
				if _, err := st.Recv(); err != io.EOF {
					h.fail(step, fmt.Errorf("stream: expected EOF after CloseSend, got %v", err))
					return
				}
				out(map[string]interface{}{"type": "stream", "ok": true, "inputs": ins, "outputs": outs})
			default:
				h.fail(step, fmt.Errorf("unknown grpctest step %q (known: %s)", step, strings.Join(allSteps, ",")))
			}
		}()
	}
}

func (h *host) panicMode(msg string) {
	raw, err := h.dispense(shared.PluginGRPCTest)
	if err != nil {
		h.fail("dispense", err)
		return
	}
	tc := raw.(*shared.TestClient)
	ctx, cancel := h.ctx()
	defer cancel()
	_, rpcErr := tc.Panic(ctx, &grpctestpb.PanicRequest{Message: msg})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !h.client.Exited() {
		time.Sleep(20 * time.Millisecond)
	}
	res := map[string]interface{}{"type": "panic", "ok": rpcErr != nil && h.client.Exited(),
		"rpc_error": errString(rpcErr), "exited": h.client.Exited()}
	out(res)
	if rpcErr == nil {
		h.fail("panic", errors.New("Panic RPC returned no error"))
	} else if !h.client.Exited() {
		h.fail("panic", errors.New("plugin still running 5s after Panic"))
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// kill runs client.Kill and reports how the plugin ended. A watchdog kills the plugin's whole
// process group if Kill has not returned in time: go-plugin SIGKILLs only the `sh` it started,
// and a plugin that survives it keeps the pipes open, so Kill would otherwise wait forever.
func (h *host) kill() {
	start := time.Now()
	done := make(chan struct{})
	forced := atomic.Bool{}
	if h.cmd != nil {
		go func() {
			select {
			case <-done:
			case <-time.After(4 * time.Second):
				if h.cmd.Process != nil {
					forced.Store(true)
					_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
				}
			}
		}()
	}
	h.client.Kill()
	close(done)
	elapsed := time.Since(start)
	res := map[string]interface{}{
		"type":         "killed",
		"graceful":     !h.sink.notGrace.Load() && !forced.Load(),
		"exited":       h.client.Exited(),
		"elapsed_ms":   elapsed.Milliseconds(),
		"group_killed": forced.Load(),
	}
	if h.cmd != nil && h.cmd.ProcessState != nil {
		ws, _ := h.cmd.ProcessState.Sys().(syscall.WaitStatus)
		res["exit_code"] = h.cmd.ProcessState.ExitCode()
		if ws.Signaled() {
			res["signal"] = ws.Signal().String()
		}
	}
	if h.cmd != nil && h.cmd.Process != nil {
		// Leave nothing behind: anything left in the plugin's process group goes now.
		if syscall.Kill(-h.cmd.Process.Pid, 0) == nil {
			res["leftovers_killed"] = true
			_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	out(res)
}

func main() {
	fs := flag.NewFlagSet("gohost", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage); fs.PrintDefaults() }
	pluginCmd := fs.String("plugin", "", "plugin command, run as `sh -c \"<cmd>\"` (like go-plugin's examples)")
	reattach := fs.String("reattach", "", `reattach to a running plugin instead of -plugin: JSON {"protocol":"grpc","protocol_version":1,"network":"unix","addr":"/tmp/plugin123","pid":42,"test":false}`)
	autoMTLS := fs.Bool("automtls", false, "ClientConfig.AutoMTLS")
	mux := fs.Bool("mux", false, "ClientConfig.GRPCBrokerMultiplex")
	cookie := fs.String("cookie", shared.DefaultCookieKey+"="+shared.DefaultCookieValue, "magic cookie KEY=VALUE")
	versions := fs.String("versions", "1", "app protocol versions: keys of ClientConfig.VersionedPlugins, e.g. 1,2")
	mode := fs.String("mode", "", "what to do (see modes)")
	steps := fs.String("steps", strings.Join(allSteps, ","), "grpctest steps, in order")
	startTimeout := fs.Duration("start-timeout", time.Minute, "ClientConfig.StartTimeout")
	callTimeout := fs.Duration("call-timeout", 10*time.Second, "timeout of each RPC")
	pluginStderr := fs.String("plugin-stderr", "", "file that receives the plugin's raw stderr lines (ClientConfig.Stderr)")
	logLevel := fs.String("log-level", "trace", "host log level (trace, debug, info, warn, error)")
	hold := fs.Bool("hold", false, "after the mode's output, wait for EOF on stdin before Kill (lets another host reattach meanwhile)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	args := fs.Args()
	usageErr := func(msg string) {
		out(map[string]interface{}{"type": "error", "step": "usage", "error": msg})
		fmt.Fprintln(os.Stderr, "gohost:", msg)
		os.Exit(2)
	}
	nargs := map[string]int{"kv-put": 2, "kv-get": 1, "kv-roundtrip": 2, "ping": 0, "grpctest": 0,
		"panic": -1, "reattach-print": 0, "shutdown": 0}
	want, known := nargs[*mode]
	switch {
	case !known:
		usageErr(fmt.Sprintf("unknown -mode %q", *mode))
	case want >= 0 && len(args) != want:
		usageErr(fmt.Sprintf("-mode %s takes %d argument(s), got %d", *mode, want, len(args)))
	case (*pluginCmd == "") == (*reattach == ""):
		usageErr("exactly one of -plugin and -reattach is required")
	}
	ck, cv, err := shared.ParseCookie(*cookie)
	if err != nil {
		usageErr(err.Error())
	}
	vs, err := shared.ParseVersions(*versions)
	if err != nil {
		usageErr(err.Error())
	}

	sink := &logSink{w: os.Stderr}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "plugin",
		Level:      hclog.LevelFromString(*logLevel),
		Output:     sink,
		JSONFormat: true,
	})
	vp := map[int]plugin.PluginSet{}
	for _, v := range vs {
		vp[v] = plugin.PluginSet{
			shared.PluginKV:       &shared.KVPlugin{},
			shared.PluginGRPCTest: &shared.TestPlugin{},
		}
	}
	h := &host{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, sink: sink, timeout: *callTimeout}
	cfg := &plugin.ClientConfig{
		HandshakeConfig:     plugin.HandshakeConfig{MagicCookieKey: ck, MagicCookieValue: cv},
		VersionedPlugins:    vp,
		AllowedProtocols:    []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:            *autoMTLS,
		GRPCBrokerMultiplex: *mux,
		StartTimeout:        *startTimeout,
		SyncStdout:          h.stdout,
		SyncStderr:          h.stderr,
		Logger:              logger,
	}
	if *pluginStderr != "" {
		f, err := os.Create(*pluginStderr)
		if err != nil {
			usageErr(err.Error())
		}
		defer f.Close()
		cfg.Stderr = f
	}
	if *reattach != "" {
		rc, err := parseReattach(*reattach)
		if err != nil {
			usageErr(err.Error())
		}
		cfg.Reattach = rc
		// go-plugin dispenses from ClientConfig.Plugins after a reattach (VersionedPlugins is
		// not consulted, and the negotiated version stays 0 unless Test is set).
		cfg.Plugins = vp[vs[0]]
	} else {
		h.cmd = exec.Command("sh", "-c", *pluginCmd)
		// Own process group, so the watchdog in kill() can reach the plugin behind `sh`.
		h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cfg.Cmd = h.cmd
	}
	h.client = plugin.NewClient(cfg)

	rpc, err := h.client.Client()
	if err != nil {
		h.fail("connect", err)
		// go-plugin has already SIGKILLed the `sh` it started; the plugin behind it may still
		// hold the pipes, which would stall Kill until the watchdog fires.
		if h.cmd != nil && h.cmd.Process != nil {
			_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		}
		h.kill()
		os.Exit(1)
	}
	h.rpc = rpc
	// go-plugin sets cfg.TLSConfig only when it loads the plugin's AutoMTLS certificate from the
	// handshake (loadServerCert); without one it silently dials in plaintext, so "tls" tells.
	connected := map[string]interface{}{"type": "connected", "negotiated_version": h.client.NegotiatedVersion(),
		"protocol": string(h.client.Protocol()), "tls": cfg.TLSConfig != nil}
	if rc := h.client.ReattachConfig(); rc != nil && rc.Addr != nil {
		connected["network"], connected["addr"] = rc.Addr.Network(), rc.Addr.String()
	}
	out(connected)

	switch *mode {
	case "kv-put":
		h.kvPut(args[0], args[1])
	case "kv-get":
		h.kvGet(args[0])
	case "kv-roundtrip":
		if h.kvPut(args[0], args[1]) {
			h.kvGet(args[0])
		}
	case "ping":
		if err := rpc.Ping(); err != nil {
			h.fail("ping", err)
		} else {
			out(map[string]interface{}{"type": "ping", "ok": true})
		}
	case "grpctest":
		h.grpctest(strings.Split(*steps, ","))
	case "panic":
		h.panicMode(strings.Join(args, " "))
	case "reattach-print":
		rc := h.client.ReattachConfig()
		if rc == nil {
			h.fail("reattach-print", errors.New("no ReattachConfig"))
			break
		}
		r := map[string]interface{}{"type": "reattach", "protocol": string(rc.Protocol),
			"protocol_version": h.client.NegotiatedVersion(), "pid": rc.Pid, "test": rc.Test}
		if rc.Addr != nil {
			r["network"], r["addr"] = rc.Addr.Network(), rc.Addr.String()
		}
		out(r)
	case "shutdown":
	}

	if *hold {
		out(map[string]interface{}{"type": "holding"})
		_, _ = io.Copy(io.Discard, os.Stdin)
	}
	h.kill()
	if h.failed {
		os.Exit(1)
	}
}
