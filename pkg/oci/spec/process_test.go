package spec

import (
	"slices"
	"strings"
	"testing"
)

func TestProcessArgs(t *testing.T) {
	for _, tc := range []struct {
		name                           string
		entrypoint, cmd, command, args []string
		want                           []string
	}{
		{"image only", []string{"/ep"}, []string{"a"}, nil, nil, []string{"/ep", "a"}},
		{"cmd only image", nil, []string{"sh", "-c", "x"}, nil, nil, []string{"sh", "-c", "x"}},
		{"command replaces entrypoint and cmd", []string{"/ep"}, []string{"a"}, []string{"/bin/x"}, nil, []string{"/bin/x"}},
		{"command and args", []string{"/ep"}, []string{"a"}, []string{"/bin/x"}, []string{"b"}, []string{"/bin/x", "b"}},
		{"args replace cmd", []string{"/ep"}, []string{"a"}, nil, []string{"b", "c"}, []string{"/ep", "b", "c"}},
		{"args without entrypoint", nil, []string{"a"}, nil, []string{"/bin/b"}, []string{"/bin/b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Image.Entrypoint, in.Image.Cmd = tc.entrypoint, tc.cmd
			in.Command, in.Args = tc.command, tc.args
			s := mustBuild(t, in)
			if !slices.Equal(s.Process.Args, tc.want) {
				t.Errorf("args = %q, want %q", s.Process.Args, tc.want)
			}
		})
	}

	t.Run("no command", func(t *testing.T) {
		in := baseInput(t)
		in.Image.Entrypoint, in.Image.Cmd = nil, nil
		_, err := Build(in)
		wantInvalid(t, err)
		if !strings.Contains(err.Error(), "no command") {
			t.Errorf("error %q does not say no command", err)
		}
	})
}

func TestProcessEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hostname string
		tty      bool
		image    []string
		request  []string
		want     []string
	}{
		{
			name:     "defaults",
			hostname: "pod-a",
			want:     []string{"HOSTNAME=pod-a", "PATH=" + defaultPath},
		},
		{
			name:     "request overrides image in place",
			hostname: "pod-a",
			image:    []string{"PATH=/img/bin", "A=1", "B=2"},
			request:  []string{"A=x", "C=3"},
			want:     []string{"HOSTNAME=pod-a", "PATH=/img/bin", "A=x", "B=2", "C=3"},
		},
		{
			name:    "tty adds TERM, no hostname",
			tty:     true,
			request: []string{"PATH=/p"},
			want:    []string{"TERM=xterm", "PATH=/p"},
		},
		{
			name:     "request may override HOSTNAME and TERM",
			hostname: "pod-a",
			tty:      true,
			request:  []string{"TERM=dumb", "HOSTNAME=me", "EMPTY="},
			want:     []string{"HOSTNAME=me", "TERM=dumb", "EMPTY=", "PATH=" + defaultPath},
		},
		{
			name:     "image entries without = are dropped (runc refuses them)",
			hostname: "pod-a",
			image:    []string{"NOEQUALS", "A=1", "=x"},
			want:     []string{"HOSTNAME=pod-a", "A=1", "PATH=" + defaultPath},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Hostname, in.TTY = tc.hostname, tc.tty
			in.Image.Env, in.Env = tc.image, tc.request
			s := mustBuild(t, in)
			if !slices.Equal(s.Process.Env, tc.want) {
				t.Errorf("env = %q, want %q", s.Process.Env, tc.want)
			}
			if s.Process.Terminal != tc.tty {
				t.Errorf("terminal = %v, want %v", s.Process.Terminal, tc.tty)
			}
		})
	}

	t.Run("empty name", func(t *testing.T) {
		in := baseInput(t)
		in.Env = []string{"=x"}
		_, err := Build(in)
		wantInvalid(t, err)
	})
}

func TestProcessCwd(t *testing.T) {
	for _, tc := range []struct {
		name, request, image, want string
		wantErr                    bool
	}{
		{name: "default root", want: "/"},
		{name: "image", image: "/srv", want: "/srv"},
		{name: "relative image dir", image: "app", want: "/app"},
		{name: "request wins", request: "/work/", image: "/srv", want: "/work"},
		{name: "relative request", request: "work", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.WorkingDir, in.Image.WorkingDir = tc.request, tc.image
			s, err := Build(in)
			if tc.wantErr {
				wantInvalid(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Process.Cwd != tc.want {
				t.Errorf("cwd = %q, want %q", s.Process.Cwd, tc.want)
			}
		})
	}
}

func TestProcessFlags(t *testing.T) {
	in := baseInput(t)
	in.Security.NoNewPrivs = true
	s := mustBuild(t, in)
	if !s.Process.NoNewPrivileges {
		t.Error("noNewPrivileges not set")
	}
	if len(s.Process.Rlimits) != 1 || s.Process.Rlimits[0].Type != "RLIMIT_NOFILE" || s.Process.Rlimits[0].Soft != 1024 {
		t.Errorf("rlimits = %+v, want runtime-tools' RLIMIT_NOFILE 1024", s.Process.Rlimits)
	}
	if s.Root.Path != in.Rootfs || s.Root.Readonly {
		t.Errorf("root = %+v", s.Root)
	}

	in.Security.NoNewPrivs = false
	if s := mustBuild(t, in); s.Process.NoNewPrivileges {
		t.Error("noNewPrivileges set without being asked")
	}
}
