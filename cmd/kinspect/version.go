package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at link time (-ldflags "-X main.version=...") for releases.
var version = "devel"

func init() {
	register(&command{name: "version", summary: "print kinspect's version", run: runVersion, help: versionHelp})
}

const versionHelp = `Usage: kinspect [--json] version

Prints kinspect's version, the revision of its source (when it was built
from a VCS checkout) and the Go release that built it.

JSON: {"version", "revision", "go"}.
`

type versionInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Go       string `json:"go"`
}

func runVersion(e *env, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("version takes no arguments: %w", errUsage)
	}
	v := versionInfo{Version: version, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.Revision = s.Value
			}
		}
	}
	if e.json {
		return writeJSON(e, v)
	}
	fmt.Fprintf(e.stdout, "kinspect %s", v.Version)
	if v.Revision != "" {
		fmt.Fprintf(e.stdout, " (%.12s)", v.Revision)
	}
	fmt.Fprintf(e.stdout, " %s\n", v.Go)
	return nil
}
