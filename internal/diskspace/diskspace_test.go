//go:build linux

package diskspace

import (
	"os"
	"testing"
)

func TestStat(t *testing.T) {
	u, err := Stat(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if u.Size == 0 || u.Avail > u.Free || u.Free > u.Size {
		t.Fatalf("Stat = %+v: want 0 < size, avail <= free <= size", u)
	}
	if _, err := Stat(t.TempDir() + "/missing"); !os.IsNotExist(err) && err == nil {
		t.Fatalf("Stat of a missing path: %v, want an error", err)
	}
}
