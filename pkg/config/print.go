package config

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// WriteTOML writes c as TOML with every key preceded by its documentation, so
// the output is both the effective configuration and a commented template.
func (c *Config) WriteTOML(w io.Writer) error {
	var buf bytes.Buffer
	buf.WriteString("# cri-runtime configuration. Flags override this file; drop-ins in config.d override it too.\n")
	if err := writeTable(&buf, "", reflect.ValueOf(c).Elem()); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func writeTable(buf *bytes.Buffer, prefix string, v reflect.Value) error {
	t := v.Type()
	var tables []int
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Struct || f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() == reflect.Struct {
			tables = append(tables, i)
			continue
		}
		key := f.Tag.Get("toml")
		val, err := encodeValue(key, v.Field(i).Interface())
		if err != nil {
			return fmt.Errorf("encode %s%s: %w", prefix, key, err)
		}
		fmt.Fprintf(buf, "\n# %s\n%s", f.Tag.Get("doc"), val)
	}
	for _, i := range tables {
		f := t.Field(i)
		name := prefix + f.Tag.Get("toml")
		if f.Type.Kind() == reflect.Map { // a table of tables, one per key
			fmt.Fprintf(buf, "\n# %s\n", f.Tag.Get("doc"))
			keys := v.Field(i).MapKeys()
			sort.Slice(keys, func(a, b int) bool { return keys[a].String() < keys[b].String() })
			for _, k := range keys {
				fmt.Fprintf(buf, "[%s.%s]\n", name, k.String())
				if err := writeTable(buf, name+"."+k.String()+".", v.Field(i).MapIndex(k)); err != nil {
					return err
				}
			}
			continue
		}
		fmt.Fprintf(buf, "\n# %s\n[%s]\n", f.Tag.Get("doc"), name)
		if err := writeTable(buf, name+".", v.Field(i)); err != nil {
			return err
		}
	}
	return nil
}

// encodeValue renders one "key = value" line with the TOML encoder, so
// quoting and arrays are always valid TOML.
func encodeValue(key string, val any) (string, error) {
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(map[string]any{key: val}); err != nil {
		return "", err
	}
	return b.String(), nil
}
