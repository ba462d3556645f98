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

// TestUserNamespace: a pod's user namespace is joined by path, and the request's bind mounts are idmapped with them; the
// pod's own files are not.
func TestUserNamespace(t *testing.T) {
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	in := baseInput(t)
	vol := t.TempDir()
	in.Mounts = []Mount{{ContainerPath: "/data", HostPath: vol}}
	in.UserNS = &UserNamespace{Path: "/run/ns/user", UIDs: maps, GIDs: maps}
	s, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/run/ns/user"}) {
		t.Errorf("namespaces %v; want the pod's user namespace joined", s.Linux.Namespaces)
	}
	if len(s.Linux.UIDMappings) != 0 || len(s.Linux.GIDMappings) != 0 {
		t.Errorf("mappings %v %v; want none (the joined namespace has them)", s.Linux.UIDMappings, s.Linux.GIDMappings)
	}
	for _, m := range s.Mounts {
		idmapped := len(m.UIDMappings) > 0 && len(m.GIDMappings) > 0
		if want := m.Destination == "/data"; idmapped != want {
			t.Errorf("mount %s: idmapped %v; want %v", m.Destination, idmapped, want)
		}
	}

	in.UserNS = &UserNamespace{Path: "/run/ns/user"}
	_, err = Build(in)
	wantInvalid(t, err)

	// Without one, nothing of it.
	in.UserNS = nil
	if s, err = Build(in); err != nil {
		t.Fatal(err)
	}
	if len(s.Linux.UIDMappings) != 0 || slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace }) {
		t.Errorf("no user namespace asked for, but the spec has %v %v", s.Linux.Namespaces, s.Linux.UIDMappings)
	}
}
