package cri

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// module is this repository's module path (go.mod).
const module = "github.com/cri-runtime/cri-runtime/"

// allowedInternal are the packages of this module the adapter may import:
// the domain services it converts to and from, and the shared vocabulary.
var allowedInternal = []string{
	"pkg/container", "pkg/sandbox", "pkg/image", "pkg/pod", // domain services
	"pkg/errdefs", "pkg/events", "pkg/version", "pkg/metrics",
	// podcheckpoint serves CheckpointPod and RestorePod: a pod-spanning
	// operation that belongs with the pod coordinator (pkg/pod). Drop this
	// entry when it moves there.
	"pkg/podcheckpoint",
}

// allowedExternal are the prefixes of the other modules it may import: the
// CRI API, gRPC and protobuf, and the OCI spec a container's record carries.
var allowedExternal = []string{
	"k8s.io/",
	"google.golang.org/grpc/",
	"google.golang.org/protobuf/",
	"github.com/opencontainers/runtime-spec/specs-go/",
}

// TestImportsOnlyDomainServices keeps pkg/cri an adapter: its code (tests
// aside, which may build fixtures from anything) imports the domain services,
// the API and the standard library, never the packages behind the services
// (the spec builder, the OCI runtime, cgroups, CNI, the configuration).
func TestImportsOnlyDomainServices(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var checked int
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			if !importAllowed(path) {
				t.Errorf("%s imports %s: pkg/cri may import only the domain services, the API and the standard library; ask the service for what you need", name, path)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no Go files found: the test must run in pkg/cri")
	}
}

func importAllowed(path string) bool {
	if rel, ok := strings.CutPrefix(path, module); ok {
		return slices.Contains(allowedInternal, rel)
	}
	if first, _, _ := strings.Cut(path, "/"); !strings.Contains(first, ".") {
		return true // the standard library
	}
	for _, p := range allowedExternal {
		if path == strings.TrimSuffix(p, "/") || strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// The rule itself: what it lets through and what it refuses.
func TestImportAllowed(t *testing.T) {
	for path, want := range map[string]bool{
		"context":                            true,
		"encoding/json":                      true,
		"k8s.io/cri-api/pkg/apis/runtime/v1": true,
		"google.golang.org/grpc":             true,
		"google.golang.org/grpc/status":      true,
		"google.golang.org/grpcx":            false,
		module + "pkg/pod":                   true,
		module + "pkg/container":             true,
		module + "pkg/sandbox":               true,
		module + "pkg/oci/spec":              false,
		module + "pkg/oci":                   false,
		module + "pkg/cgroup":                false,
		module + "pkg/config":                false,
		module + "pkg/sandbox/cni":           false,
		"github.com/containers/storage":      false,
	} {
		if got := importAllowed(path); got != want {
			t.Errorf("importAllowed(%q) = %v; want %v", path, got, want)
		}
	}
}
