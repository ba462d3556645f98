package spec

import "testing"

func TestStopSignal(t *testing.T) {
	for _, tc := range []struct {
		requested, image string
		want             string
		wantErr          bool
	}{
		{"", "", "SIGTERM", false},
		{"", "SIGQUIT", "SIGQUIT", false},
		{"SIGKILL", "SIGQUIT", "SIGKILL", false},
		{"SIGTERM", "", "SIGTERM", false},
		{"TERM", "", "SIGTERM", false},
		{"15", "", "SIGTERM", false},
		{"sigkill", "", "SIGKILL", false},
		{"  int ", "", "SIGINT", false},
		{"", "9", "SIGKILL", false},
		{"", "SIGWINCH", "SIGWINCH", false},
		{"SIGIOT", "", "SIGABRT", false},
		{"SIGRTMIN+3", "", "SIGRTMIN+3", false},
		{"rtmin+3", "", "SIGRTMIN+3", false},
		{"37", "", "SIGRTMIN+3", false},
		{"SIGRTMIN", "", "SIGRTMIN", false},
		{"SIGRTMAX", "", "SIGRTMAX", false},
		{"SIGRTMAX-2", "", "SIGRTMIN+28", false},
		{"SIGBOGUS", "", "", true},
		{"", "NOPE", "", true},
		{"0", "", "", true},
		{"65", "", "", true},
		{"32", "", "", true},
		{"-9", "", "", true},
		{"SIGRTMIN+31", "", "", true},
		{"SIGRTMIN-1", "", "", true},
		{"SIGRTMAX+1", "", "", true},
	} {
		t.Run(tc.requested+"/"+tc.image, func(t *testing.T) {
			got, err := StopSignal(tc.requested, tc.image)
			if tc.wantErr {
				wantInvalid(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("StopSignal(%q, %q) = %q, want %q", tc.requested, tc.image, got, tc.want)
			}
		})
	}

	// Every classic signal number round-trips through its canonical name.
	for n := 1; n <= 31; n++ {
		name, err := StopSignal("", itoa(n))
		if err != nil || name == "" {
			t.Fatalf("signal %d: %q, %v", n, name, err)
		}
		if back, err := parseSignal(name); err != nil || back != n {
			t.Errorf("%s parses to %d, %v; want %d", name, back, err, n)
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
