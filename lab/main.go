// Command lab boots real Debian kernels under QEMU with a workload of
// known BPF objects, captures the truth inside the guest and dumps its
// memory in every format kinspect reads. See lab/README.md.
//
//	go run ./lab [-v] [-force] SCENARIO...   build scenarios (cached)
//	go run ./lab list                        the scenarios
//	go run ./lab path SCENARIO [FORMAT]      where a scenario (or dump) is
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kinspect/kinspect/internal/labdata"
)

var verbose bool

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "lab: "+format+"\n", args...)
}

func main() {
	force := flag.Bool("force", false, "rebuild even when the cache has the scenario")
	jobs := flag.Int("j", 1, "build up to `N` scenarios at once (each guest runs on one core)")
	flag.BoolVar(&verbose, "v", false, "show the guest's progress")
	flag.Usage = usage
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		usage()
		os.Exit(2)
	}
	switch args[0] {
	case "list":
		for _, s := range scenarios {
			fmt.Printf("%-12s %s\n", s.Name, s.About)
		}
		fmt.Println("NAME-live    the live-mode variant of a scenario (not kd*): kinspect runs inside the guest")
		return
	case "reparse":
		for _, name := range args[1:] {
			if err := reparseCrash(name); err != nil {
				fmt.Fprintln(os.Stderr, "lab:", err)
				os.Exit(1)
			}
		}
		return
	case "path":
		if len(args) < 2 {
			usage()
			os.Exit(2)
		}
		s, err := labdata.Load(args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if len(args) == 2 {
			fmt.Println(s.Dir)
			return
		}
		f, ok := s.Format(args[2])
		if !ok {
			fmt.Fprintf(os.Stderr, "lab: %s has no format %s\n", args[1], args[2])
			os.Exit(1)
		}
		fmt.Println(s.Path(f.Path))
		return
	}
	if args[0] == "all" {
		args = nil
		for _, s := range scenarios {
			args = append(args, s.Name)
		}
	}
	repo, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
	var todo []scenario
	for _, name := range args {
		s, ok := findScenario(name)
		if !ok {
			fmt.Fprintf(os.Stderr, "lab: no scenario %q (go run ./lab list)\n", name)
			os.Exit(2)
		}
		todo = append(todo, s)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []string
		sem    = make(chan struct{}, max(*jobs, 1))
	)
	for _, s := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			start := time.Now()
			dir, cached, err := buildScenario(repo, labdata.Root(), s, *force)
			if err != nil {
				logf("%s: FAILED: %v", s.Name, err)
				mu.Lock()
				failed = append(failed, s.Name)
				mu.Unlock()
				return
			}
			how := "built"
			if cached {
				how = "cached"
			}
			logf("%s: %s in %v: %s", s.Name, how, time.Since(start).Round(time.Second), dir)
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		logf("failed: %s", strings.Join(failed, " "))
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintf(os.Stderr, `usage:
  go run ./lab [-v] [-force] SCENARIO...   build scenarios, reusing the cache
  go run ./lab all                         every scenario
  go run ./lab list                        the scenarios
  go run ./lab path SCENARIO [FORMAT]      the directory of a built scenario, or a dump's path
  go run ./lab reparse SCENARIO...         rewrite a kdump scenario's crash truth from its console log

Scenarios: %s (and NAME-live for each).
The cache is $%s, default %s.
`, strings.Join(scenarioNames(), ", "), labdata.EnvDir, filepath.Join("~/.cache", "kinspect-lab"))
}

func scenarioNames() []string {
	var n []string
	for _, s := range scenarios {
		n = append(n, s.Name)
	}
	return n
}
