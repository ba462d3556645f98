package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cri-runtime/cri-runtime/pkg/record"
)

// stateFile is a pod's persistent record, under <root>/sandboxes/<id>/.
const stateFile = "sandbox.json"

func (m *Manager) recordDir(id string) string { return filepath.Join(m.opts.Root, "sandboxes", id) }

// save writes sb's record atomically.
func (m *Manager) save(sb *Sandbox) error {
	return record.Save(filepath.Join(m.recordDir(sb.ID), stateFile), sb)
}

// forget deletes sb's record.
func (m *Manager) forget(id string) error {
	if err := os.RemoveAll(m.recordDir(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove record of pod %s: %w", id, err)
	}
	return nil
}

// loadAll reads every record. A record that cannot be read is logged and
// skipped, never a reason to refuse to start.
func (m *Manager) loadAll() ([]*Sandbox, error) {
	entries, err := os.ReadDir(filepath.Join(m.opts.Root, "sandboxes"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Sandbox
	for _, e := range entries {
		sb := &Sandbox{}
		if err := record.Load(filepath.Join(m.opts.Root, "sandboxes", e.Name(), stateFile), sb); err != nil || sb.ID != e.Name() {
			m.log.Warn("skip corrupt pod record", "pod", e.Name(), "err", err)
			continue
		}
		out = append(out, sb)
	}
	return out, nil
}
