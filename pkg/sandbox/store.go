package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// stateFile is a pod's persistent record, under <root>/sandboxes/<id>/.
const stateFile = "sandbox.json"

func (m *Manager) recordDir(id string) string { return filepath.Join(m.opts.Root, "sandboxes", id) }

// save writes sb's record atomically (write, fsync, rename).
func (m *Manager) save(sb *Sandbox) error {
	dir := m.recordDir(sb.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(sb, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("save pod %s: %w", sb.ID, err)
	}
	return nil
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
		data, err := os.ReadFile(filepath.Join(m.opts.Root, "sandboxes", e.Name(), stateFile))
		if err != nil {
			m.log.Warn("skip unreadable pod record", "pod", e.Name(), "err", err)
			continue
		}
		sb := &Sandbox{}
		if err := json.Unmarshal(data, sb); err != nil || sb.ID != e.Name() {
			m.log.Warn("skip corrupt pod record", "pod", e.Name(), "err", err)
			continue
		}
		sb.claimed = true
		out = append(out, sb)
	}
	return out, nil
}
