package record

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSaveLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a", "b.json")
	type rec struct{ N int }
	if err := Save(p, rec{1}); err != nil {
		t.Fatal(err)
	}
	if err := Save(p, rec{2}); err != nil {
		t.Fatal(err)
	}
	var got rec
	if err := Load(p, &got); err != nil || got.N != 2 {
		t.Fatalf("Load = %+v, %v", got, err)
	}
	if left, _ := filepath.Glob(p + ".tmp*"); len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
	if err := os.WriteFile(p, []byte("{half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Load(p, &got); err == nil {
		t.Fatal("Load of a corrupt record succeeded")
	}
}
