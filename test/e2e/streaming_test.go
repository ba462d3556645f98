package e2e

// Exec, Attach and PortForward as kubectl and crictl use them: the gRPC call
// hands out a URL, and the client libraries the kubelet and kubectl use
// (client-go's remotecommand and portforward over SPDY, and WebSocket) stream
// through it to our streaming server.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// syncBuffer is a bytes.Buffer written by a client's goroutine and read
// by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// sizeQueue feeds terminal sizes to a remotecommand client.
type sizeQueue chan *remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize { return <-q }

// stream runs a remotecommand session on streamURL (SPDY, or WebSocket when
// ws) and returns its error.
func stream(ctx context.Context, t *testing.T, streamURL string, ws bool, opts remotecommand.StreamOptions) error {
	t.Helper()
	var ex remotecommand.Executor
	var err error
	if ws {
		// The streaming library serves WebSocket channel protocols up to v4
		// (v5 adds closing stdin, which only SPDY offers here).
		ex, err = remotecommand.NewWebSocketExecutorForProtocols(&rest.Config{}, "GET", streamURL, "v4.channel.k8s.io")
	} else {
		u, perr := url.Parse(streamURL)
		if perr != nil {
			t.Fatal(perr)
		}
		ex, err = remotecommand.NewSPDYExecutor(&rest.Config{}, "POST", u)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ex.StreamWithContext(ctx, opts)
}

// execURL asks for an exec URL through the kubelet's client.
func execURL(t *testing.T, d *framework.Daemon, req *runtimeapi.ExecRequest) string {
	t.Helper()
	resp, err := d.Runtime.Exec(ctxT(t), req)
	if err != nil {
		t.Fatalf("Exec(%v) = %v", req, err)
	}
	return resp.Url
}

// execCode is the exit code a remotecommand error reports, 0 for none.
func execCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ce utilexec.CodeExitError
	if errors.As(err, &ce) {
		return ce.Code
	}
	t.Fatalf("stream error %v (%T) is not an exit code", err, err)
	return -1
}

func waitFor(t *testing.T, what string, buf *syncBuffer, want string) {
	t.Helper()
	if !eventually(20*time.Second, func() bool { return strings.Contains(buf.String(), want) }) {
		t.Fatalf("%s: output %q never contained %q", what, buf.String(), want)
	}
}

func TestStreamingExec(t *testing.T) {
	t.Parallel()
	raceBuild(t)
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "stream-exec")
	id := runCtr(t, d, pod, podCfg, shCfg("main", "exec sleep 1000"))

	for _, ws := range []bool{false, true} {
		proto := map[bool]string{false: "spdy", true: "websocket"}[ws]
		t.Run("echo without tty "+proto, func(t *testing.T) {
			var out, errOut syncBuffer
			u := execURL(t, d, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo out; echo err >&2"}, Stdout: true, Stderr: true})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := stream(ctx, t, u, ws, remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut}); err != nil {
				t.Fatalf("exec: %v", err)
			}
			if out.String() != "out\n" || errOut.String() != "err\n" {
				t.Errorf("stdout %q stderr %q; want \"out\\n\" and \"err\\n\"", out.String(), errOut.String())
			}
		})
		t.Run("exit code "+proto, func(t *testing.T) {
			u := execURL(t, d, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "exit 3"}, Stdout: true})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if code := execCode(t, stream(ctx, t, u, ws, remotecommand.StreamOptions{Stdout: io.Discard})); code != 3 {
				t.Errorf("exit code %d; want 3", code)
			}
		})
	}
	t.Run("echo with tty", func(t *testing.T) {
		var out syncBuffer
		u := execURL(t, d, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "tty; echo hello"}, Stdout: true, Tty: true})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := stream(ctx, t, u, false, remotecommand.StreamOptions{Stdout: &out, Tty: true}); err != nil {
			t.Fatalf("exec: %v", err)
		}
		// A terminal turns \n into \r\n.
		if !strings.HasPrefix(out.String(), "/dev/pts/") || !strings.HasSuffix(out.String(), "\r\nhello\r\n") {
			t.Errorf("output %q; want a /dev/pts/N line, then hello, with terminal line ends", out.String())
		}
	})
	t.Run("interactive stdin", func(t *testing.T) {
		var out syncBuffer
		u := execURL(t, d, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "cat; echo end"}, Stdin: true, Stdout: true})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		in, inW := io.Pipe()
		done := make(chan error, 1)
		go func() { done <- stream(ctx, t, u, false, remotecommand.StreamOptions{Stdin: in, Stdout: &out}) }()
		fmt.Fprintln(inW, "first")
		waitFor(t, "cat", &out, "first\n")
		fmt.Fprintln(inW, "second")
		inW.Close() // cat sees the end of its input
		if err := <-done; err != nil {
			t.Fatalf("exec: %v", err)
		}
		if out.String() != "first\nsecond\nend\n" {
			t.Errorf("output %q; want first, second, end", out.String())
		}
	})
	t.Run("tty resize", func(t *testing.T) {
		var out syncBuffer
		script := `while read line; do [ "$line" = q ] && exit 5; stty size; done`
		u := execURL(t, d, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", script}, Stdin: true, Stdout: true, Tty: true})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		in, inW := io.Pipe()
		sizes := make(sizeQueue, 4)
		sizes <- &remotecommand.TerminalSize{Width: 100, Height: 30}
		done := make(chan error, 1)
		go func() {
			done <- stream(ctx, t, u, false, remotecommand.StreamOptions{Stdin: in, Stdout: &out, Tty: true, TerminalSizeQueue: sizes})
		}()
		// Sizes and input travel on different streams: ask until the
		// answer shows the size.
		ask := func(want string) {
			t.Helper()
			if !eventually(20*time.Second, func() bool {
				fmt.Fprintln(inW, "x")
				time.Sleep(100 * time.Millisecond)
				return strings.Contains(out.String(), want)
			}) {
				t.Fatalf("stty size never said %q; output %q", want, out.String())
			}
		}
		ask("30 100")
		sizes <- &remotecommand.TerminalSize{Width: 150, Height: 50}
		ask("50 150")
		fmt.Fprintln(inW, "q")
		if code := execCode(t, <-done); code != 5 {
			t.Errorf("exit code %d; want 5", code)
		}
		close(sizes)
		inW.Close()
	})
	t.Run("background child does not hold the session", func(t *testing.T) {
		var out syncBuffer
		u := execURL(t, d, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh", "-c", "sleep 30 & echo started"}, Stdout: true})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		if err := stream(ctx, t, u, false, remotecommand.StreamOptions{Stdout: &out}); err != nil || out.String() != "started\n" {
			t.Fatalf("exec = %v, output %q", err, out.String())
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("exec took %v; the background sleep held it", took)
		}
	})
	t.Run("client going away kills the command", func(t *testing.T) {
		pid := runningPid(t, d, id)
		for i, tty := range []bool{false, true} {
			cmd := fmt.Sprintf("sleep %d", 1001+i)
			u := execURL(t, d, &runtimeapi.ExecRequest{ContainerId: id, Cmd: strings.Fields(cmd), Stdout: true, Tty: tty})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- stream(ctx, t, u, false, remotecommand.StreamOptions{Stdout: io.Discard, Tty: tty}) }()
			running := func() bool {
				for _, c := range procsInCtr(t, pid) {
					if c == cmd {
						return true
					}
				}
				return false
			}
			if !eventually(20*time.Second, running) {
				t.Fatalf("%s (tty %v) never ran; processes %q", cmd, tty, procsInCtr(t, pid))
			}
			cancel()
			<-done
			if !eventually(20*time.Second, func() bool { return !running() }) {
				t.Errorf("%s (tty %v) still runs after its client went away", cmd, tty)
			}
		}
	})
	t.Run("missing program", func(t *testing.T) {
		var errOut syncBuffer
		u := execURL(t, d, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"/no/such/program"}, Stdout: true, Stderr: true})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := stream(ctx, t, u, false, remotecommand.StreamOptions{Stdout: io.Discard, Stderr: &errOut})
		if err == nil || !strings.Contains(err.Error(), "/no/such/program") {
			t.Errorf("exec of a missing program = %v; want an error naming it", err)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		rc := d.RawRuntime(t)
		exited := runCtr(t, d, pod, podCfg, shCfg("done", "true"))
		d.WaitExited(t, exited)
		for _, tc := range []struct {
			what string
			req  *runtimeapi.ExecRequest
			code codes.Code
		}{
			{"unknown container", &runtimeapi.ExecRequest{ContainerId: strings.Repeat("ab", 32), Cmd: []string{"true"}, Stdout: true}, codes.NotFound},
			{"exited container", &runtimeapi.ExecRequest{ContainerId: exited, Cmd: []string{"true"}, Stdout: true}, codes.FailedPrecondition},
			{"tty with stderr", &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true, Stderr: true, Tty: true}, codes.InvalidArgument},
			{"no stream", &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}}, codes.InvalidArgument},
			{"no command", &runtimeapi.ExecRequest{ContainerId: id, Stdout: true}, codes.InvalidArgument},
		} {
			if _, err := rc.Exec(ctxT(t), tc.req); status.Code(err) != tc.code {
				t.Errorf("Exec on %s = %v; want %v", tc.what, err, tc.code)
			}
		}
		rc2 := d.RawRuntime(t)
		if _, err := rc2.Attach(ctxT(t), &runtimeapi.AttachRequest{ContainerId: exited, Stdout: true}); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("Attach to an exited container = %v; want FailedPrecondition", err)
		}
		if _, err := rc2.Attach(ctxT(t), &runtimeapi.AttachRequest{ContainerId: strings.Repeat("ab", 32), Stdout: true}); status.Code(err) != codes.NotFound {
			t.Errorf("Attach to an unknown container = %v; want NotFound", err)
		}
	})
}

func TestStreamingAttach(t *testing.T) {
	t.Parallel()
	raceBuild(t)
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "stream-attach")
	attachURL := func(t *testing.T, req *runtimeapi.AttachRequest) string {
		t.Helper()
		resp, err := d.Runtime.Attach(ctxT(t), req)
		if err != nil {
			t.Fatalf("Attach(%v) = %v", req, err)
		}
		return resp.Url
	}

	t.Run("ongoing output", func(t *testing.T) {
		id := runCtr(t, d, pod, podCfg, shCfg("ticker", `i=0; while true; do echo tick $i; echo tock $i >&2; i=$((i+1)); sleep 0.2; done`))
		var out, errOut syncBuffer
		u := attachURL(t, &runtimeapi.AttachRequest{ContainerId: id, Stdout: true, Stderr: true})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- stream(ctx, t, u, false, remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut}) }()
		if !eventually(20*time.Second, func() bool {
			return strings.Count(out.String(), "tick") >= 3 && strings.Count(errOut.String(), "tock") >= 3
		}) {
			t.Fatalf("attached output: stdout %q stderr %q; want ticks on stdout and tocks on stderr", out.String(), errOut.String())
		}
		cancel() // the client detaches; the container goes on
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("the attach session did not end after the client went")
		}
		if st := d.CtrStatus(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("container %v after the client detached; want running", st.State)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		cfg := shCfg("cat", "cat")
		cfg.Stdin = true
		id := runCtr(t, d, pod, podCfg, cfg)
		for _, word := range []string{"ping", "pong"} { // twice: stdin stays open
			var out syncBuffer
			u := attachURL(t, &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true})
			in, inW := io.Pipe()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			done := make(chan error, 1)
			go func() { done <- stream(ctx, t, u, false, remotecommand.StreamOptions{Stdin: in, Stdout: &out}) }()
			// The session may not be connected yet: say it until heard.
			if !eventually(20*time.Second, func() bool {
				fmt.Fprintln(inW, word)
				time.Sleep(100 * time.Millisecond)
				return strings.Contains(out.String(), word+"\n")
			}) {
				t.Fatalf("attached cat never echoed %q; output %q", word, out.String())
			}
			inW.Close() // detach
			if err := <-done; err != nil {
				t.Errorf("attach: %v", err)
			}
			cancel()
		}
		if st := d.CtrStatus(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("container %v after two attaches; want running (stdin left open)", st.State)
		}
		waitLog(t, podCfg, cfg, []string{"ping", "pong"}, nil)
	})
	t.Run("stdin once", func(t *testing.T) {
		cfg := shCfg("once", "cat; echo cat-done")
		cfg.Stdin, cfg.StdinOnce = true, true
		id := runCtr(t, d, pod, podCfg, cfg)
		var out syncBuffer
		u := attachURL(t, &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		in, inW := io.Pipe()
		done := make(chan error, 1)
		go func() { done <- stream(ctx, t, u, false, remotecommand.StreamOptions{Stdin: in, Stdout: &out}) }()
		if !eventually(20*time.Second, func() bool {
			fmt.Fprintln(inW, "only")
			time.Sleep(100 * time.Millisecond)
			return strings.Contains(out.String(), "only\n")
		}) {
			t.Fatalf("attached cat never echoed; output %q", out.String())
		}
		inW.Close() // the container's stdin closes with ours
		if err := <-done; err != nil {
			t.Errorf("attach: %v", err)
		}
		st := d.WaitExited(t, id)
		if st.ExitCode != 0 || !strings.Contains(out.String(), "cat-done") {
			t.Errorf("container exit %d, output %q; want 0 and cat-done", st.ExitCode, out.String())
		}
	})
	t.Run("tty and resize", func(t *testing.T) {
		cfg := shCfg("shell", "exec sh")
		cfg.Stdin, cfg.Tty = true, true
		id := runCtr(t, d, pod, podCfg, cfg)
		var out syncBuffer
		u := attachURL(t, &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true, Tty: true})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		in, inW := io.Pipe()
		sizes := make(sizeQueue, 4)
		sizes <- &remotecommand.TerminalSize{Width: 77, Height: 33}
		done := make(chan error, 1)
		go func() {
			done <- stream(ctx, t, u, false, remotecommand.StreamOptions{Stdin: in, Stdout: &out, Tty: true, TerminalSizeQueue: sizes})
		}()
		if !eventually(20*time.Second, func() bool {
			fmt.Fprintln(inW, "echo $((6*7)); stty size")
			time.Sleep(200 * time.Millisecond)
			return strings.Contains(out.String(), "42\r\n33 77")
		}) {
			t.Fatalf("attached shell: output %q; want 42 and the size 33 77", out.String())
		}
		inW.Close()
		close(sizes)
		cancel()
		<-done
	})
}

func TestStreamingPortForward(t *testing.T) {
	t.Parallel()
	raceBuild(t)
	d, _ := startCtrDaemon(t)
	pod, podCfg := ctrPod(t, d, "stream-pf")
	runCtr(t, d, pod, podCfg, shCfg("web", `mkdir -p /tmp/a /tmp/b; echo page-a > /tmp/a/index.html; echo page-b > /tmp/b/index.html
httpd -p 127.0.0.1:8081 -h /tmp/b; exec httpd -f -p 8080 -h /tmp/a`))
	pfURL := func(t *testing.T, pod string, ports ...int32) string {
		t.Helper()
		resp, err := d.Runtime.PortForward(ctxT(t), &runtimeapi.PortForwardRequest{PodSandboxId: pod, Port: ports})
		if err != nil {
			t.Fatalf("PortForward(%s, %v) = %v", pod, ports, err)
		}
		return resp.Url
	}

	// Wait for both servers: client-go's forwarder gives up entirely on the
	// first error from the pod (kubectl reports "lost connection to pod").
	for _, port := range []int{8080, 8081} {
		if !eventually(20*time.Second, func() bool {
			data, _ := forwardOnce(t, pfURL(t, pod, int32(port)), port, []byte("GET / HTTP/1.0\r\n\r\n"))
			return bytes.HasPrefix(data, []byte("HTTP/1."))
		}) {
			t.Fatalf("httpd on port %d in the pod never answered through port-forward", port)
		}
	}

	t.Run("http through client-go", func(t *testing.T) {
		u, _ := url.Parse(pfURL(t, pod, 8080, 8081))
		transport, upgrader, err := spdy.RoundTripperFor(&rest.Config{})
		if err != nil {
			t.Fatal(err)
		}
		dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u)
		stop, ready := make(chan struct{}), make(chan struct{})
		var pfOut, pfErr syncBuffer
		fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{":8080", ":8081"}, stop, ready, &pfOut, &pfErr)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- fw.ForwardPorts() }()
		defer func() {
			close(stop)
			if err := <-done; err != nil {
				t.Errorf("ForwardPorts: %v", err)
			}
		}()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("ForwardPorts: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("port forward not ready")
		}
		ports, err := fw.GetPorts()
		if err != nil || len(ports) != 2 {
			t.Fatalf("GetPorts = %v, %v", ports, err)
		}
		get := func(local uint16) (int, string, error) {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", local))
			if err != nil {
				return 0, "", err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body), err
		}
		for i, want := range []string{"page-a\n", "page-b\n"} {
			if code, body, err := get(ports[i].Local); err != nil || code != 200 || body != want {
				t.Errorf("GET through port %d (remote %d) = %d %q %v; want 200 %q", ports[i].Local, ports[i].Remote, code, body, err, want)
			}
		}
		// Concurrent connections over one session.
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if code, body, err := get(ports[0].Local); err != nil || code != 200 || body != "page-a\n" {
					errs <- fmt.Errorf("concurrent GET = %d %q %v", code, body, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	t.Run("closed port reports an error", func(t *testing.T) {
		// The streaming library writes the error and then resets both
		// streams; the reset can overtake the reply to the data stream's
		// creation or the error text. Each try must bring no data; one of a
		// few must bring the error naming the port.
		var got []string
		for try := 0; try < 5; try++ {
			data, msg, err := tryForward(t, pfURL(t, pod, 9999), 9999, nil)
			if len(data) != 0 {
				t.Fatalf("forward to a closed port brought data %q", data)
			}
			if err == nil && strings.Contains(msg, "9999") {
				return
			}
			got = append(got, fmt.Sprintf("error stream %q, stream error %v", msg, err))
		}
		t.Errorf("forward to a closed port never reported an error naming the port: %q", got)
	})
	t.Run("bad requests", func(t *testing.T) {
		rc := d.RawRuntime(t)
		stopped := runPod(t, d, podConfig("stopped"))
		if err := d.Runtime.StopPodSandbox(ctxT(t), stopped); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			what string
			req  *runtimeapi.PortForwardRequest
			code codes.Code
		}{
			{"unknown pod", &runtimeapi.PortForwardRequest{PodSandboxId: strings.Repeat("cd", 32), Port: []int32{80}}, codes.NotFound},
			{"stopped pod", &runtimeapi.PortForwardRequest{PodSandboxId: stopped, Port: []int32{80}}, codes.FailedPrecondition},
			{"no pod", &runtimeapi.PortForwardRequest{Port: []int32{80}}, codes.InvalidArgument},
			{"bad port", &runtimeapi.PortForwardRequest{PodSandboxId: pod, Port: []int32{70000}}, codes.InvalidArgument},
		} {
			if _, err := rc.PortForward(ctxT(t), tc.req); status.Code(err) != tc.code {
				t.Errorf("PortForward on %s = %v; want %v", tc.what, err, tc.code)
			}
		}
	})
}

// forwardOnce speaks the port-forward protocol by hand, as kubectl does for
// one connection: an error stream and a data stream for port, request
// written, the half-closed data stream read to its end. It returns what
// the pod answered and what arrived on the error stream.
func forwardOnce(t *testing.T, pfURL string, port int, request []byte) (data []byte, errMsg string) {
	t.Helper()
	data, errMsg, err := tryForward(t, pfURL, port, request)
	if err != nil {
		t.Fatal(err)
	}
	return data, errMsg
}

// tryForward is forwardOnce that returns, rather than fails on, an error
// creating the data stream: the server resets a pair whose port it cannot
// reach, and the reset may arrive before the stream's reply.
func tryForward(t *testing.T, pfURL string, port int, request []byte) (data []byte, errMsg string, err error) {
	t.Helper()
	u, _ := url.Parse(pfURL)
	transport, upgrader, err := spdy.RoundTripperFor(&rest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u).Dial(portforward.PortForwardProtocolV1Name)
	if err != nil {
		t.Fatalf("dial %s: %v", pfURL, err)
	}
	defer conn.Close()
	h := http.Header{}
	h.Set("streamType", "error")
	h.Set("port", strconv.Itoa(port))
	h.Set("requestID", "0")
	errStream, err := conn.CreateStream(h)
	if err != nil {
		t.Fatal(err)
	}
	errStream.Close() // we send nothing on it
	h.Set("streamType", "data")
	dataStream, err := conn.CreateStream(h)
	if err != nil {
		return nil, "", fmt.Errorf("create data stream: %w", err)
	}
	errc := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(errStream); errc <- b }()
	if len(request) > 0 {
		if _, err := dataStream.Write(request); err != nil {
			t.Fatal(err)
		}
	}
	dataStream.Close()
	datac := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(dataStream); datac <- b }()
	select {
	case data = <-datac:
	case <-time.After(30 * time.Second):
		t.Fatal("data stream never ended")
	}
	select {
	case b := <-errc:
		errMsg = string(b)
	case <-time.After(30 * time.Second):
		t.Fatal("error stream never ended")
	}
	return data, errMsg, nil
}

// daemonGauge reads one metric of the daemon's /metrics.
func daemonGauge(t *testing.T, metricsAddr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestStreamingLeavesNothing runs 100 execs and 100 port-forwards one after
// the other and checks that the daemon's goroutines and descriptors come
// back to where they were, and no helper process is left.
func TestStreamingLeavesNothing(t *testing.T) {
	t.Parallel()
	raceBuild(t)
	metricsAddr := freeAddr(t)
	d := startPodDaemon(t, "--metrics-address", metricsAddr)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	pod, podCfg := ctrPod(t, d, "stream-leak")
	id := runCtr(t, d, pod, podCfg, shCfg("web", `mkdir /tmp/w; echo leak > /tmp/w/index.html; exec httpd -f -p 8080 -h /tmp/w`))

	session := func() {
		var out syncBuffer
		u := execURL(t, d, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"echo", "x"}, Stdout: true})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := stream(ctx, t, u, false, remotecommand.StreamOptions{Stdout: &out}); err != nil || out.String() != "x\n" {
			t.Fatalf("exec = %v, %q", err, out.String())
		}
		resp, err := d.Runtime.PortForward(ctxT(t), &runtimeapi.PortForwardRequest{PodSandboxId: pod, Port: []int32{8080}})
		if err != nil {
			t.Fatal(err)
		}
		data, msg := forwardOnce(t, resp.Url, 8080, []byte("GET / HTTP/1.0\r\n\r\n"))
		if !bytes.HasPrefix(data, []byte("HTTP/1.")) || !bytes.HasSuffix(data, []byte("leak\n")) || msg != "" {
			t.Fatalf("port-forward = %q, error %q", data, msg)
		}
	}
	session() // warm up: the first use starts the servers' long-lived goroutines
	settle := func() (goroutines, fds float64) {
		time.Sleep(500 * time.Millisecond)
		return daemonGauge(t, metricsAddr, "go_goroutines"), daemonGauge(t, metricsAddr, "process_open_fds")
	}
	g0, f0 := settle()
	for range 100 {
		session()
	}
	var g1, f1 float64
	if !eventually(20*time.Second, func() bool {
		g1, f1 = settle()
		return g1 <= g0+3 && f1 <= f0+3
	}) {
		t.Errorf("after 100 execs and port-forwards the daemon has %v goroutines (was %v) and %v open fds (was %v)", g1, g0, f1, f0)
	}
	t.Logf("goroutines %v -> %v, fds %v -> %v", g0, g1, f0, f1)
	var left []string // this daemon's only: other tests' daemons may be busy
	for _, p := range framework.ProcsMentioning(t, "reap-exec", d.Pid()) {
		if strings.Contains(p, d.Dir+"/") {
			left = append(left, p)
		}
	}
	if len(left) > 0 {
		t.Errorf("helper processes left: %q", left)
	}
	if entries, _ := os.ReadDir(d.State + "/oci/pty"); len(entries) > 0 {
		t.Errorf("console sockets left: %d", len(entries))
	}
}

// TestStreamingOverTLS serves streams over HTTPS with a configured key pair
// and requires client certificates from a configured CA.
func TestStreamingOverTLS(t *testing.T) {
	t.Parallel()
	raceBuild(t)
	dir := t.TempDir()
	ca, caKey := selfSigned(t, "e2e CA", nil, nil)
	srv, srvKey := selfSigned(t, "127.0.0.1", ca, caKey)
	client, clientKey := selfSigned(t, "kubelet", ca, caKey)
	write := func(name string, blocks ...*pem.Block) string {
		var b bytes.Buffer
		for _, blk := range blocks {
			pem.Encode(&b, blk)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caPEM := write("ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	d := framework.NewDaemon(t, framework.Options{Binary: binaryFor(t), Args: []string{"--registries-conf", registriesConf}})
	conf := fmt.Sprintf("[streaming]\ntls_cert = %q\ntls_key = %q\ntls_client_ca = %q\n",
		write("srv.pem", &pem.Block{Type: "CERTIFICATE", Bytes: srv.Raw}), write("srv-key.pem", keyBlock(t, srvKey)), caPEM)
	if err := os.WriteFile(filepath.Join(d.Dir, "config.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatalf("start: %v\n%s", err, d.Logs())
	}
	cleanupPods(t, d)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	pod, podCfg := ctrPod(t, d, "stream-tls")
	id := runCtr(t, d, pod, podCfg, shCfg("main", "exec sleep 1000"))

	req := &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"echo", "secure"}, Stdout: true}
	u := execURL(t, d, req)
	if !strings.HasPrefix(u, "https://") {
		t.Fatalf("exec URL %s; want https", u)
	}
	exec := func(cfg *rest.Config) (string, error) {
		pu, _ := url.Parse(execURL(t, d, req))
		ex, err := remotecommand.NewSPDYExecutor(cfg, "POST", pu)
		if err != nil {
			t.Fatal(err)
		}
		var out syncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out})
		return out.String(), err
	}
	tlsCfg := rest.TLSClientConfig{
		CAFile:   caPEM,
		CertFile: write("client.pem", &pem.Block{Type: "CERTIFICATE", Bytes: client.Raw}),
		KeyFile:  write("client-key.pem", keyBlock(t, clientKey)),
	}
	if out, err := exec(&rest.Config{TLSClientConfig: tlsCfg}); err != nil || out != "secure\n" {
		t.Errorf("exec over TLS with a client certificate = %q, %v; want \"secure\\n\"", out, err)
	}
	if out, err := exec(&rest.Config{TLSClientConfig: rest.TLSClientConfig{CAFile: caPEM}}); err == nil {
		t.Errorf("exec over TLS without a client certificate succeeded (%q); want it refused", out)
	}
}

// selfSigned makes an ECDSA certificate for name (an IP address gets an IP
// SAN), signed by parent, or self-signed CA when parent is nil.
func selfSigned(t *testing.T, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	} else {
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func keyBlock(t *testing.T, key *ecdsa.PrivateKey) *pem.Block {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
}
