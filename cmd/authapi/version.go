package main

import (
	"cmp"
	"fmt"
	"io"
	"runtime/debug"
)

// printVersion writes the module version and the VCS state the binary was built from, as the
// Go toolchain recorded them (go build in a git checkout records the commit; go install
// module@version records the version). What was not recorded shows as "(devel)" or "unknown".
func printVersion(w io.Writer, info *debug.BuildInfo, ok bool) {
	version, goVersion := "(devel)", "unknown"
	settings := map[string]string{}
	if ok && info != nil {
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		goVersion = cmp.Or(info.GoVersion, goVersion)
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
	}
	value := func(key string) string { return cmp.Or(settings[key], "unknown") }
	fmt.Fprintf(w, "authapi %s\ncommit:   %s\ntime:     %s\nmodified: %s\ngo:       %s\n",
		version, value("vcs.revision"), value("vcs.time"), value("vcs.modified"), goVersion)
}
