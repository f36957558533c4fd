// Package version says which build of HazardWatch a binary is, from the
// module's build information (module version, VCS revision and time, Go
// version), for every command's -version flag.
package version

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// String describes the build: the module version, the commit it was built
// from (with "+modified" when the tree had changes), the commit time, and
// the Go toolchain and platform.
func String() string {
	v, rev, at, modified := "(unknown)", "", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		v = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	out := v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified {
			rev += "+modified"
		}
		out += " commit " + rev
		if at != "" {
			out += " " + at
		}
	}
	return fmt.Sprintf("%s %s %s/%s", out, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Flag registers -version on fs; after Parse, Print if it is set.
func Flag(fs *flag.FlagSet) *bool {
	return fs.Bool("version", false, "print the version and exit")
}

// Print writes "name version" to w.
func Print(w io.Writer, name string) {
	fmt.Fprintln(w, name, String())
}
