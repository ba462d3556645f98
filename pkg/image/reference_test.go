package image

import (
	"errors"
	"strings"
	"testing"

	"go.podman.io/image/v5/docker/reference"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

func TestParseID(t *testing.T) {
	hex := strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{hex, true},
		{"sha256:" + hex, true},
		{hex[:63], false},
		{strings.ToUpper(hex), false},
		{"busybox", false},
		{"sha512:" + hex, false},
	} {
		id, ok := parseID(tc.in)
		if ok != tc.ok || ok && (id.Hex() != hex || id.String() != "sha256:"+hex) {
			t.Errorf("parseID(%q) = %q, %v; want ok=%v", tc.in, id, ok, tc.ok)
		}
	}
}

func TestIDPrefix(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"abc", "abc", true},
		{"sha256:abc123", "abc123", true},
		{"ab", "", false},
		{"busybox", "", false},
		{strings.Repeat("a", 64), "", false}, // a full ID is not a prefix
	} {
		got, ok := idPrefix(tc.in)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("idPrefix(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"busybox", "docker.io/library/busybox"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"},
		{"127.0.0.1:5000/x/y@sha256:" + strings.Repeat("a", 64), "127.0.0.1:5000/x/y@sha256:" + strings.Repeat("a", 64)},
		{"UPPER/Case", ""},
		{"busybox@sha256:123", ""},
		{"a::b", ""},
		{"", ""},
	} {
		named, err := parseName(tc.in)
		if tc.want == "" {
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.in) {
				t.Errorf("parseName(%q) = %v, %v; want InvalidArgument naming it", tc.in, named, err)
			}
			continue
		}
		if err != nil || named.String() != tc.want {
			t.Errorf("parseName(%q) = %v, %v; want %s", tc.in, named, err, tc.want)
		}
	}
}

func TestRepoTag(t *testing.T) {
	tagged, _ := reference.ParseNormalizedNamed("busybox")
	if got, ok := repoTag(tagged); !ok || got != "docker.io/library/busybox:latest" {
		t.Errorf("repoTag(busybox) = %q, %v", got, ok)
	}
	digested, _ := reference.ParseNormalizedNamed("busybox@sha256:" + strings.Repeat("a", 64))
	if _, ok := repoTag(digested); ok {
		t.Error("a digested name is not a tag")
	}
}

func TestDropTagIfDigested(t *testing.T) {
	dg := "sha256:" + strings.Repeat("a", 64)
	for in, want := range map[string]string{
		"busybox:latest@" + dg:       "busybox@" + dg,
		"quay.io/x/y:1@" + dg:        "quay.io/x/y@" + dg,
		"127.0.0.1:5000/x:tag@" + dg: "127.0.0.1:5000/x@" + dg,
		"busybox@" + dg:              "busybox@" + dg,
		"busybox:latest":             "busybox:latest",
		"not a reference":            "not a reference",
	} {
		if got := dropTagIfDigested(in); got != want {
			t.Errorf("dropTagIfDigested(%q) = %q; want %q", in, got, want)
		}
	}
}
