// Command validate loads a Compose file as Docker Compose does, with compose-go (the Compose
// specification's reference implementation): schema validation, interpolation, normalization and
// the consistency checks (every volume, network and dependency a service names exists). It prints
// the resolved project as JSON on standard output, or the loader's error on standard error and
// exits 1.
//
//	validate [-e NAME=VALUE]... FILE
//
// Interpolation sees only the variables given with -e: never the caller's environment, never a
// .env file, so a file's required variables (${NAME:?message}) must be given.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type variables []string

func (v *variables) String() string { return strings.Join(*v, " ") }

func (v *variables) Set(value string) error {
	if !strings.Contains(value, "=") {
		return fmt.Errorf("%q is not NAME=VALUE", value)
	}
	*v = append(*v, value)
	return nil
}

func main() {
	var env variables
	flag.Var(&env, "e", "`NAME=VALUE` visible to interpolation (repeatable)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: validate [-e NAME=VALUE]... FILE")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), env); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(file string, env []string) error {
	path, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	options, err := cli.NewProjectOptions([]string{path},
		cli.WithWorkingDirectory(filepath.Dir(path)), // as `docker compose -f FILE`: paths are relative to it
		cli.WithEnv(env),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	out, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(out, '\n'))
	return err
}
