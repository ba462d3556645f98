package spec

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// setNamespaces replaces the generator's namespaces with the container's:
// pid, network, ipc and uts as the modes say, and always a new mount
// namespace. The hostname is set only with a pod UTS namespace, because runc
// refuses a hostname it would have to set on the host.
func setNamespaces(g *generate.Generator, in Input) error {
	g.ClearLinuxNamespaces()
	var list []specs.LinuxNamespace

	pid, err := pidNamespace(in.PID)
	if err != nil {
		return err
	}
	list = append(list, pid...)
	for _, ns := range []struct {
		typ specs.LinuxNamespaceType
		ns  Namespace
	}{
		{specs.NetworkNamespace, in.Network},
		{specs.IPCNamespace, in.IPC},
		{specs.UTSNamespace, in.UTS},
	} {
		entry, err := podNamespace(ns.typ, ns.ns)
		if err != nil {
			return err
		}
		list = append(list, entry...)
	}
	list = append(list, specs.LinuxNamespace{Type: specs.MountNamespace})
	if u := in.UserNS; u != nil {
		if u.Path == "" || len(u.UIDs) == 0 || len(u.GIDs) == 0 {
			return fmt.Errorf("user namespace: a path and mappings are needed: %w", errdefs.ErrInvalidArgument)
		}
		// Joined by path, its mappings are the namespace's own: runc wants
		// them not repeated.
		list = append(list, specs.LinuxNamespace{Type: specs.UserNamespace, Path: u.Path})
	}
	g.Config.Linux.Namespaces = list

	if in.UTS.Mode == Pod {
		g.SetHostname(in.Hostname)
	} else {
		g.RemoveHostname()
	}
	return nil
}

// podNamespace maps a network, ipc or uts namespace: Pod joins the pod's,
// Node uses the host's (no entry). Per-container or target namespaces do
// not exist for these in the CRI.
func podNamespace(typ specs.LinuxNamespaceType, ns Namespace) ([]specs.LinuxNamespace, error) {
	switch ns.Mode {
	case Pod:
		if ns.Path == "" {
			return nil, fmt.Errorf("%s namespace: pod mode without a path: %w", typ, errdefs.ErrInvalidArgument)
		}
		return []specs.LinuxNamespace{{Type: typ, Path: ns.Path}}, nil
	case Node:
		return nil, nil
	}
	return nil, fmt.Errorf("%s namespace: mode %s is not supported: %w", typ, ns.Mode, errdefs.ErrInvalidArgument)
}

// pidNamespace maps the pid namespace: Container gets a new one, Pod and
// Target join the one at Path, Node uses the host's.
func pidNamespace(ns Namespace) ([]specs.LinuxNamespace, error) {
	switch ns.Mode {
	case Container:
		return []specs.LinuxNamespace{{Type: specs.PIDNamespace}}, nil
	case Pod, Target:
		if ns.Path == "" {
			return nil, fmt.Errorf("pid namespace: %s mode without a path: %w", ns.Mode, errdefs.ErrInvalidArgument)
		}
		return []specs.LinuxNamespace{{Type: specs.PIDNamespace, Path: ns.Path}}, nil
	case Node:
		return nil, nil
	}
	return nil, fmt.Errorf("pid namespace: mode %s is not supported: %w", ns.Mode, errdefs.ErrInvalidArgument)
}
