package framework

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// LogLine is one line of a container log in the CRI format the kubelet reads:
// "<RFC3339Nano time> <stdout|stderr> <F|P> <text>".
type LogLine struct {
	Time    time.Time
	Stream  string // "stdout" or "stderr"
	Partial bool   // tag P: the text continues on the next line of the same stream
	Text    string
}

// ParseCRILog parses a whole CRI log. Every line must be well formed; a
// trailing line without its newline is reported as an error, since the
// runtime writes each line whole.
func ParseCRILog(data []byte) ([]LogLine, error) {
	s := string(data)
	if s == "" {
		return nil, nil
	}
	if !strings.HasSuffix(s, "\n") {
		return nil, fmt.Errorf("log does not end with a newline: %q", lastLine(s))
	}
	var out []LogLine
	for i, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		parts := strings.SplitN(l, " ", 4)
		if len(parts) < 3 {
			return nil, fmt.Errorf("line %d %q: want \"<time> <stream> <tag> <text>\"", i+1, l)
		}
		ts, err := time.Parse(time.RFC3339Nano, parts[0])
		if err != nil {
			return nil, fmt.Errorf("line %d %q: time: %v", i+1, l, err)
		}
		if parts[1] != "stdout" && parts[1] != "stderr" {
			return nil, fmt.Errorf("line %d %q: stream %q is neither stdout nor stderr", i+1, l, parts[1])
		}
		if parts[2] != "F" && parts[2] != "P" {
			return nil, fmt.Errorf("line %d %q: tag %q is neither F nor P", i+1, l, parts[2])
		}
		text := ""
		if len(parts) == 4 {
			text = parts[3]
		}
		out = append(out, LogLine{Time: ts, Stream: parts[1], Partial: parts[2] == "P", Text: text})
	}
	return out, nil
}

// ReadCRILog reads and parses the log at path. A missing file is an empty log.
func ReadCRILog(path string) ([]LogLine, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseCRILog(b)
}

// Joined returns the full lines of one stream, partial lines joined.
func Joined(lines []LogLine, stream string) []string {
	var out []string
	cur, open := "", false
	for _, l := range lines {
		if l.Stream != stream {
			continue
		}
		cur += l.Text
		open = true
		if !l.Partial {
			out = append(out, cur)
			cur, open = "", false
		}
	}
	if open {
		out = append(out, cur)
	}
	return out
}

func lastLine(s string) string {
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}
