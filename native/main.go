// Command native is the NLI command line: train a model, evaluate it on the
// suite (the paper's Table 1 row), generate task files and solve tasks. It
// runs on the CPU backend; built with the cuda tag it can also run on a GPU.
//
//	native train --split shift-l --config tiny --steps 120 --seed 0 --out runs/a
//	native eval  --weights runs/a/model.nliw.sz --split shift-l --tasks 50
//	native gen   --split comp-i --part ood --n 100 --seed 7 > tasks.jsonl
//	native solve --weights runs/a/model.nliw.sz --tasks tasks.jsonl
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

func init() {
	// A device backend's context belongs to one OS thread (CUDA.md).
	runtime.LockOSThread()
}

const usage = `usage: native <command> [flags]

commands:
  train   train a model on a split          (native train -h)
  eval    Table-1 row of a weights file     (native eval -h)
  gen     write a task file (JSONL)         (native gen -h)
  solve   answer every task of a file       (native solve -h)
  language what each learned symbol does       (native language -h)
  bench   training and search speed, per-op times (native bench -h)
  curve   accuracy against search starts × steps  (native curve -h)
  select  the lowest-NLL run of several candidates (native select -h)
  convert PyTorch-reference bundle → .nliw.sz (native convert -h)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks errors already reported by the flag package.
var errUsage = errors.New("usage")

// run executes one command and returns the process exit code: 0 on
// success, 2 on bad input or failure, with a one-line message on stderr.
func run(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "native: internal error: %v\n%s", r, debug.Stack())
			code = 3
		}
	}()
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "train":
		err = cmdTrain(args[1:], stdout, stderr)
	case "eval":
		err = cmdEval(args[1:], stdout, stderr)
	case "gen":
		err = cmdGen(args[1:], stdout, stderr)
	case "solve":
		err = cmdSolve(args[1:], stdout, stderr)
	case "convert":
		err = cmdConvert(args[1:], stdout, stderr)
	case "language":
		err = cmdLanguage(args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(args[1:], stdout, stderr)
	case "curve":
		err = cmdCurve(args[1:], stdout, stderr)
	case "select":
		err = cmdSelect(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "native: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if !errors.Is(err, errUsage) {
		fmt.Fprintf(stderr, "native %s: %v\n", args[0], err)
	}
	return 2
}

// newFlags returns a flag set that reports errors once, to stderr.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("native "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args and rejects stray positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
