package cri

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/container"
)

// What a container's security context names, for seccomp and AppArmor,
// becomes; an unset choice is each kind's CRI default.
func TestSecurityProfiles(t *testing.T) {
	sp := func(typ runtimeapi.SecurityProfile_ProfileType, ref string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: typ, LocalhostRef: ref}
	}
	for _, tc := range []struct {
		name    string
		kind    string // "apparmor" unless set
		field   *runtimeapi.SecurityProfile
		legacy  string
		unset   container.ProfileType
		want    container.Profile
		wantErr bool
	}{
		{name: "seccomp unset is unconfined", unset: container.ProfileUnconfined, want: container.Profile{Type: container.ProfileUnconfined}},
		{name: "apparmor unset is the default", unset: container.ProfileRuntimeDefault, want: container.Profile{Type: container.ProfileRuntimeDefault}},
		{name: "legacy unconfined", legacy: "unconfined", unset: container.ProfileRuntimeDefault, want: container.Profile{Type: container.ProfileUnconfined}},
		{name: "legacy runtime/default", legacy: "runtime/default", unset: container.ProfileUnconfined, want: container.Profile{Type: container.ProfileRuntimeDefault}},
		{name: "legacy localhost", legacy: "localhost/p", unset: container.ProfileRuntimeDefault, want: container.Profile{Type: container.ProfileLocalhost, LocalhostRef: "p"}},
		{name: "field wins over legacy", field: sp(runtimeapi.SecurityProfile_Unconfined, ""), legacy: "localhost/p",
			unset: container.ProfileRuntimeDefault, want: container.Profile{Type: container.ProfileUnconfined}},
		{name: "field localhost", field: sp(runtimeapi.SecurityProfile_Localhost, "q"), unset: container.ProfileUnconfined,
			want: container.Profile{Type: container.ProfileLocalhost, LocalhostRef: "q"}},
		{name: "apparmor field with the legacy prefix", field: sp(runtimeapi.SecurityProfile_Localhost, "localhost/q"), unset: container.ProfileRuntimeDefault,
			want: container.Profile{Type: container.ProfileLocalhost, LocalhostRef: "q"}},
		{name: "seccomp field keeps its path", kind: "seccomp", field: sp(runtimeapi.SecurityProfile_Localhost, "localhost/q"), unset: container.ProfileUnconfined,
			want: container.Profile{Type: container.ProfileLocalhost, LocalhostRef: "localhost/q"}},
		{name: "legacy nonsense", legacy: "sometimes", unset: container.ProfileUnconfined, wantErr: true},
		{name: "field unknown type", field: sp(7, ""), unset: container.ProfileUnconfined, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind := tc.kind
			if kind == "" {
				kind = "apparmor"
			}
			got, err := profile(kind, tc.field, tc.legacy, tc.unset)
			if (err != nil) != tc.wantErr || (err == nil && got != tc.want) {
				t.Errorf("profile = %+v, %v; want %+v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
