package proc

import (
	"errors"
	"os"
	"testing"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       Stat
		bad        bool
	}{
		{"plain", "42 (sleep) S 7 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 2000 100", Stat{'S', 7, 123456}, false},
		{"spaces and parens in the name", "9 (a b) c)) Z 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0 0", Stat{'Z', 1, 77}, false},
		{"no name", "9 S 1", Stat{}, true},
		{"short", "9 (x) S 1 2 3", Stat{}, true},
	} {
		got, err := parseStat([]byte(tc.line))
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("%s: parseStat = %+v, %v; want %+v (error %v)", tc.name, got, err, tc.want, tc.bad)
		}
	}
}

func TestReadStat(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil || st.PPID != os.Getppid() || st.StartTicks == 0 {
		t.Fatalf("ReadStat(self) = %+v, %v; want our parent %d and a start time", st, err, os.Getppid())
	}
	if _, err := ReadStat(1 << 30); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadStat of no process: %v; want ErrNotExist", err)
	}
}
