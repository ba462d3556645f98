package spec

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestNamespaces(t *testing.T) {
	podNet := Namespace{Mode: Pod, Path: "/run/ns/net"}
	podIPC := Namespace{Mode: Pod, Path: "/run/ns/ipc"}
	podUTS := Namespace{Mode: Pod, Path: "/run/ns/uts"}
	node := Namespace{Mode: Node}
	ns := func(typ specs.LinuxNamespaceType, path string) specs.LinuxNamespace {
		return specs.LinuxNamespace{Type: typ, Path: path}
	}
	mnt := ns(specs.MountNamespace, "")

	for _, tc := range []struct {
		name               string
		net, ipc, uts, pid Namespace
		want               []specs.LinuxNamespace
		wantHostname       string
		wantErr            bool
	}{
		{
			name: "pod namespaces, private pid",
			net:  podNet, ipc: podIPC, uts: podUTS, pid: Namespace{Mode: Container},
			want: []specs.LinuxNamespace{
				ns(specs.PIDNamespace, ""), ns(specs.NetworkNamespace, "/run/ns/net"),
				ns(specs.IPCNamespace, "/run/ns/ipc"), ns(specs.UTSNamespace, "/run/ns/uts"), mnt,
			},
			wantHostname: "pod-a",
		},
		{
			name: "pod pid",
			net:  podNet, ipc: podIPC, uts: podUTS, pid: Namespace{Mode: Pod, Path: "/proc/42/ns/pid"},
			want: []specs.LinuxNamespace{
				ns(specs.PIDNamespace, "/proc/42/ns/pid"), ns(specs.NetworkNamespace, "/run/ns/net"),
				ns(specs.IPCNamespace, "/run/ns/ipc"), ns(specs.UTSNamespace, "/run/ns/uts"), mnt,
			},
			wantHostname: "pod-a",
		},
		{
			name: "target pid",
			net:  podNet, ipc: podIPC, uts: podUTS, pid: Namespace{Mode: Target, Path: "/proc/7/ns/pid"},
			want: []specs.LinuxNamespace{
				ns(specs.PIDNamespace, "/proc/7/ns/pid"), ns(specs.NetworkNamespace, "/run/ns/net"),
				ns(specs.IPCNamespace, "/run/ns/ipc"), ns(specs.UTSNamespace, "/run/ns/uts"), mnt,
			},
			wantHostname: "pod-a",
		},
		{
			name: "all host: only mount namespace, no hostname",
			net:  node, ipc: node, uts: node, pid: node,
			want: []specs.LinuxNamespace{mnt},
		},
		{
			name: "host network keeps pod uts",
			net:  node, ipc: podIPC, uts: podUTS, pid: Namespace{Mode: Container},
			want: []specs.LinuxNamespace{
				ns(specs.PIDNamespace, ""), ns(specs.IPCNamespace, "/run/ns/ipc"),
				ns(specs.UTSNamespace, "/run/ns/uts"), mnt,
			},
			wantHostname: "pod-a",
		},
		{name: "pod network without path", net: Namespace{Mode: Pod}, ipc: podIPC, uts: podUTS, pid: node, wantErr: true},
		{name: "private network unsupported", net: Namespace{Mode: Container}, ipc: podIPC, uts: podUTS, pid: node, wantErr: true},
		{name: "target ipc unsupported", net: podNet, ipc: Namespace{Mode: Target, Path: "/x"}, uts: podUTS, pid: node, wantErr: true},
		{name: "target pid without path", net: podNet, ipc: podIPC, uts: podUTS, pid: Namespace{Mode: Target}, wantErr: true},
		{name: "unknown pid mode", net: podNet, ipc: podIPC, uts: podUTS, pid: Namespace{Mode: 9}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Network, in.IPC, in.UTS, in.PID = tc.net, tc.ipc, tc.uts, tc.pid
			s, err := Build(in)
			if tc.wantErr {
				wantInvalid(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Linux.Namespaces, tc.want) {
				t.Errorf("namespaces = %+v, want %+v", s.Linux.Namespaces, tc.want)
			}
			if s.Hostname != tc.wantHostname {
				t.Errorf("hostname = %q, want %q", s.Hostname, tc.wantHostname)
			}
		})
	}
}
