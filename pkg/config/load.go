package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/BurntSushi/toml"
)

// Default locations of the configuration files.
const (
	DefaultFile      = "/etc/cri-runtime/config.toml"
	DefaultDropInDir = "/etc/cri-runtime/config.d"
)

// Sources says where the configuration comes from. File is read when it
// exists; if FileRequired is set its absence is an error. Then every *.toml in
// DropInDir is applied in lexical order, each overriding what came before.
type Sources struct {
	File         string
	FileRequired bool
	DropInDir    string
}

// Load returns Default() overlaid with the files named by src, in order. It
// does not validate: callers run Validate after applying their flags.
// The returned list names the files that were actually read.
func Load(src Sources) (*Config, []string, error) {
	cfg := Default()
	var read []string
	if src.File != "" {
		err := decodeFile(src.File, cfg)
		switch {
		case err == nil:
			read = append(read, src.File)
		case errors.Is(err, fs.ErrNotExist) && !src.FileRequired:
		default:
			return nil, nil, err
		}
	}
	if src.DropInDir != "" {
		files, err := filepath.Glob(filepath.Join(src.DropInDir, "*.toml"))
		if err != nil {
			return nil, nil, fmt.Errorf("read drop-in dir %s: %w", src.DropInDir, err)
		}
		sort.Strings(files)
		for _, f := range files {
			if err := decodeFile(f, cfg); err != nil {
				return nil, nil, err
			}
			read = append(read, f)
		}
	}
	return cfg, read, nil
}

// decodeFile decodes one TOML file over cfg. Unknown keys are errors, so a
// typo never silently leaves a default in force.
func decodeFile(path string, cfg *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config %s: %w", path, err)
	}
	md, err := toml.Decode(string(data), cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("config %s:%d: %s", path, pe.Position.Line, pe.Message)
		}
		return fmt.Errorf("config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		k := undecoded[0]
		return fmt.Errorf("config %s:%d: unknown key %q", path, keyLine(data, k[len(k)-1]), k.String())
	}
	return nil
}

// keyLine finds the line that assigns key, for error messages; 0 if unsure.
func keyLine(data []byte, key string) int {
	re := regexp.MustCompile(`^\s*("?)` + regexp.QuoteMeta(key) + `("?)\s*=|^\s*\[+\s*([\w.-]+\.)?` + regexp.QuoteMeta(key) + `\s*\]+`)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		if re.MatchString(sc.Text()) {
			return line
		}
	}
	return 0
}
