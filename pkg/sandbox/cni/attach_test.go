package cni

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
)

func TestRuntimeConf(t *testing.T) {
	pod := Pod{
		ID: "abc", Name: "web", Namespace: "prod", UID: "u-1", NetNS: "/run/x/ns/net",
		PortMappings: []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp", HostIP: "127.0.0.1"}},
		Bandwidth:    &Bandwidth{IngressRate: 1000, IngressBurst: 2000},
		DNS:          &DNS{Servers: []string{"10.0.0.10"}, Searches: []string{"svc"}},
	}
	rt := runtimeConf(pod, PodInterface)
	if rt.ContainerID != "abc" || rt.NetNS != "/run/x/ns/net" || rt.IfName != "eth0" {
		t.Fatalf("runtime conf = %+v", rt)
	}
	want := [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "prod"}, {"K8S_POD_NAME", "web"}, {"K8S_POD_INFRA_CONTAINER_ID", "abc"}, {"K8S_POD_UID", "u-1"}}
	if !reflect.DeepEqual(rt.Args, want) {
		t.Fatalf("CNI_ARGS = %v; want %v", rt.Args, want)
	}
	// Capabilities are rendered as plugins receive them.
	caps, err := json.Marshal(rt.CapabilityArgs)
	if err != nil {
		t.Fatal(err)
	}
	const wantCaps = `{"bandwidth":{"ingressRate":1000,"ingressBurst":2000},"dns":{"servers":["10.0.0.10"],"searches":["svc"]},"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":"127.0.0.1"}]}`
	if string(caps) != wantCaps {
		t.Fatalf("capabilities = %s\nwant %s", caps, wantCaps)
	}
	if bare := runtimeConf(Pod{ID: "x"}, PodInterface); len(bare.CapabilityArgs) != 0 {
		t.Fatalf("a pod asking for nothing gets capabilities %v", bare.CapabilityArgs)
	}
}

func TestBuiltinNetworkPortmapOnlyWhenNeeded(t *testing.T) {
	confDir, binDir := t.TempDir(), t.TempDir()
	for _, p := range []string{"bridge", "host-local", "portmap"} {
		fakePlugin(t, binDir, p)
	}
	n, err := newManager(t, confDir, binDir).Network(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	plugins := func(bytes []byte) []string {
		var conf struct {
			Plugins []struct {
				Type   string `json:"type"`
				IPMasq bool   `json:"ipMasq"`
			} `json:"plugins"`
		}
		if err := json.Unmarshal(bytes, &conf); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range conf.Plugins {
			if p.IPMasq {
				t.Fatalf("the built-in bridge must not masquerade per pod (one static rule does)")
			}
			out = append(out, p.Type)
		}
		return out
	}
	if got := plugins(n.list.Bytes); !reflect.DeepEqual(got, []string{"bridge", "portmap"}) {
		t.Fatalf("built-in network for pods with port mappings = %v", got)
	}
	if got := plugins(n.withoutPortmap.Bytes); !reflect.DeepEqual(got, []string{"bridge"}) {
		t.Fatalf("built-in network for pods without port mappings = %v", got)
	}
}
