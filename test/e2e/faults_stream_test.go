package e2e

// Streaming sessions whose client fails: killed in the middle of sending
// stdin, in the middle of receiving output, or after never reading at all.
// For exec (with and without a tty), attach and port-forward, nothing the
// session made (the command, the helper, the daemon's descriptors and
// goroutines) may outlive the client by more than a few seconds.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/test/e2e/framework"
)

// clientFailure is how a streaming client fails.
type clientFailure int

const (
	killedMidStdin  clientFailure = iota // sending an endless stdin, then killed
	killedMidOutput                      // reading endless output, then killed
	neverReading                         // reads nothing (its link stalls), then killed
)

func (f clientFailure) String() string {
	return [...]string{"killed mid-stdin", "killed mid-output", "never reading"}[f]
}

// viaProxy rewrites a streaming URL to go through p.
func viaProxy(t *testing.T, p *framework.FaultProxy, streamURL string) string {
	t.Helper()
	u, err := url.Parse(streamURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.Addr()
	return u.String()
}

func TestStreamingClientFailures(t *testing.T) {
	t.Parallel()
	raceBuild(t)
	metricsAddr := freeAddr(t)
	d := startPodDaemon(t, "--metrics-address", metricsAddr)
	pull(t, d, framework.BusyboxImage, factsOf(t, framework.BusyboxImage))
	pod, podCfg := ctrPod(t, d, "stream-faults")
	tok := randomHex(4)
	// The pod's port-forward servers: 8080 sends endless output on each
	// connection, 8081 swallows what it is sent.
	runCtr(t, d, pod, podCfg, shCfg("servers", `printf '#!/bin/sh\nexec yes\n' >/out; printf '#!/bin/sh\nexec cat >/dev/null\n' >/in
chmod +x /out /in; nc -ll -p 8081 -e /in & exec nc -ll -p 8080 -e /out`))
	main := runCtr(t, d, pod, podCfg, shCfg("main", "exec sleep 3600"))
	attachCfg := shCfg("attached", "cat >/dev/null & s=$(head -c 2000 /dev/zero | tr '\\0' x); while true; do echo $s; sleep 0.01; done")
	attachCfg.Stdin = true
	attached := runCtr(t, d, pod, podCfg, attachCfg)

	gauges := func() (goroutines, fds float64) {
		return daemonGauge(t, metricsAddr, "go_goroutines"), daemonGauge(t, metricsAddr, "process_open_fds")
	}
	streamHost := func() string {
		u, err := url.Parse(execURL(t, d, &runtimeapi.ExecRequest{ContainerId: main, Cmd: []string{"true"}, Stdout: true}))
		if err != nil {
			t.Fatal(err)
		}
		return u.Host
	}()

	// One session of each kind before measuring: the servers' long-lived
	// goroutines start with their first use.
	if _, _, err := d.Runtime.ExecSync(ctxT(t), main, []string{"true"}, 10*time.Second); err != nil {
		t.Fatalf("ExecSync: %v", err)
	}
	resp, err := d.Runtime.PortForward(ctxT(t), &runtimeapi.PortForwardRequest{PodSandboxId: pod, Port: []int32{9}})
	if err != nil {
		t.Fatal(err)
	}
	tryForward(t, resp.Url, 9, nil) // a closed port: the server answers, or resets the pair
	// podSockets lists the pod's TCP sockets on port 8080 or 8081 in state
	// st ("0A" listening, "01" established), from /proc/net/tcp{,6}.
	podSockets := func(st string) []string {
		out, _, _ := d.Runtime.ExecSync(ctxT(t), main, []string{"cat", "/proc/net/tcp", "/proc/net/tcp6"}, 10*time.Second)
		var socks []string
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 3 && f[3] == st && (strings.HasSuffix(f[1], ":1F90") || strings.HasSuffix(f[1], ":1F91")) {
				socks = append(socks, f[1]+" "+f[2])
			}
		}
		return socks
	}
	if !eventually(20*time.Second, func() bool { return len(podSockets("0A")) >= 2 }) {
		t.Fatal("the pod's servers never listened")
	}

	// session is one client of one kind: run returns when the client's
	// connection is gone. left lists what the session made that is still
	// there (a command, a connection into the pod).
	type session struct {
		name string
		left func(t *testing.T, f clientFailure) []string
		run  func(ctx context.Context, t *testing.T, p *framework.FaultProxy, f clientFailure)
	}
	execSession := func(tty bool) session {
		return session{
			name: map[bool]string{false: "exec", true: "exec with tty"}[tty],
			left: func(t *testing.T, f clientFailure) []string {
				return framework.ProcsMentioning(t, fmt.Sprintf("exec-%s-%v-%d", tok, tty, f), 0)
			},
			run: func(ctx context.Context, t *testing.T, p *framework.FaultProxy, f clientFailure) {
				m := fmt.Sprintf("exec-%s-%v-%d", tok, tty, f)
				cmd := []string{"yes", m}
				opts := remotecommand.StreamOptions{Stdout: io.Discard, Tty: tty}
				if f == killedMidStdin {
					cmd = []string{"sh", "-c", "cat >/dev/null; exec sleep 3600 # " + m}
					opts.Stdin = zeros{}
				}
				u := execURL(t, d, &runtimeapi.ExecRequest{ContainerId: main, Cmd: cmd, Stdin: opts.Stdin != nil, Stdout: true, Tty: tty})
				_ = stream(ctx, t, viaProxy(t, p, u), false, opts)
			},
		}
	}
	sessions := []session{execSession(false), execSession(true), {
		name: "attach",
		left: func(*testing.T, clientFailure) []string { return nil },
		run: func(ctx context.Context, t *testing.T, p *framework.FaultProxy, f clientFailure) {
			resp, err := d.Runtime.Attach(ctxT(t), &runtimeapi.AttachRequest{ContainerId: attached, Stdin: f == killedMidStdin, Stdout: true})
			if err != nil {
				t.Errorf("Attach: %v", err)
				return
			}
			opts := remotecommand.StreamOptions{Stdout: io.Discard}
			if f == killedMidStdin {
				opts.Stdin = zeros{}
			}
			_ = stream(ctx, t, viaProxy(t, p, resp.Url), false, opts)
		},
	}, {
		name: "port-forward",
		left: func(*testing.T, clientFailure) []string { return podSockets("01") },
		run: func(ctx context.Context, t *testing.T, p *framework.FaultProxy, f clientFailure) {
			port := map[bool]int{false: 8080, true: 8081}[f == killedMidStdin]
			resp, err := d.Runtime.PortForward(ctxT(t), &runtimeapi.PortForwardRequest{PodSandboxId: pod, Port: []int32{int32(port)}})
			if err != nil {
				t.Errorf("PortForward: %v", err)
				return
			}
			u, _ := url.Parse(viaProxy(t, p, resp.Url))
			transport, upgrader, err := spdy.RoundTripperFor(&rest.Config{})
			if err != nil {
				t.Error(err)
				return
			}
			conn, _, err := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u).Dial(portforward.PortForwardProtocolV1Name)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer conn.Close()
			h := http.Header{}
			h.Set("port", strconv.Itoa(port))
			h.Set("requestID", "0")
			h.Set("streamType", "error")
			errStream, err := conn.CreateStream(h)
			if err != nil {
				return
			}
			errStream.Close()
			h.Set("streamType", "data")
			data, err := conn.CreateStream(h)
			if err != nil {
				return
			}
			go func() { <-ctx.Done(); conn.Close() }()
			if f == killedMidStdin {
				_, _ = io.Copy(data, zeros{})
			} else {
				_, _ = io.Copy(io.Discard, data)
			}
		},
	}}

	for range faultRounds(t, 1) {
		for _, s := range sessions {
			for _, f := range []clientFailure{killedMidStdin, killedMidOutput, neverReading} {
				t.Run(s.name+" "+f.String(), func(t *testing.T) {
					g0, f0 := gauges()
					p, err := framework.StartFaultProxy(streamHost)
					if err != nil {
						t.Fatal(err)
					}
					defer p.Close()
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					ended := make(chan struct{})
					go func() { defer close(ended); s.run(ctx, t, p, f) }()

					// The session is under way: its command runs, its connection
					// into the pod is up, output flows.
					if s.name != "attach" && !eventually(20*time.Second, func() bool { return len(s.left(t, f)) > 0 }) {
						t.Fatal("the session never began")
					}
					if f != killedMidStdin {
						if !eventually(20*time.Second, func() bool { return p.Relayed() > 16<<10 }) {
							t.Fatalf("no output reached the client (%d bytes)", p.Relayed())
						}
					}
					if f == neverReading {
						p.Stall()
					}
					time.Sleep(time.Second) // pipes, sockets and the stream's windows fill up
					p.Drop()                // the client is killed
					select {
					case <-ended:
					case <-time.After(20 * time.Second):
						t.Error("the client did not see its connections reset")
					}

					// Within a few seconds nothing of the session is left.
					var g1, f1 float64
					gone := eventually(10*time.Second, func() bool {
						g1, f1 = gauges()
						return len(s.left(t, f)) == 0 && g1 <= g0+2 && f1 <= f0
					})
					if !gone {
						t.Errorf("10 s after the client was killed: processes %q; goroutines %v (were %v), open fds %v (were %v)",
							s.left(t, f), g1, g0, f1, f0)
					}
					if st := d.CtrStatus(t, attached); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
						t.Errorf("the attached container is %v; a client going must not stop it", st.State)
					}
				})
			}
		}
	}
	var left []string
	for _, p := range framework.ProcsMentioning(t, "reap-exec", d.Pid()) {
		if strings.Contains(p, d.Dir+"/") {
			left = append(left, p)
		}
	}
	if len(left) > 0 {
		t.Errorf("exec helpers left: %q", left)
	}
}
