package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEmptyDirectoryIsAnError: validate and grafana on a directory without
// site files fail and say so, instead of printing nothing and exiting 0.
func TestEmptyDirectoryIsAnError(t *testing.T) {
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "README.txt"), []byte("not a site"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"validate", empty},
		{"validate", "../../configs/sites", empty},
		{"grafana", "-out", t.TempDir(), empty},
	} {
		var out, errOut bytes.Buffer
		if code := dispatch(args, &out, &errOut); code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
		if !strings.Contains(errOut.String(), "no *.yaml or *.yml files in directory "+empty) {
			t.Errorf("%v: stderr %q does not name the empty directory", args, errOut.String())
		}
		if strings.Contains(out.String(), ": ok") {
			t.Errorf("%v: reported ok: %s", args, out.String())
		}
	}
}

// TestValidateNamesLineOfBinaryFile: a file that is not text is refused
// with its file, line and column.
func TestValidateNamesLineOfBinaryFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "gbk.yaml")
	// "name: 储罐区" saved in GBK, as a Chinese Windows editor may.
	if err := os.WriteFile(bad, []byte("id: s1\nname: \xb4\xa2\xb9\xde\xc7\xf8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"validate", dir}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if want := bad + ":2:7: byte 0xb4 is not UTF-8"; !strings.Contains(out.String(), want) {
		t.Errorf("output %q lacks %q", out.String(), want)
	}
}
