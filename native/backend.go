// Backend selection for the command line: --device cpu (always) or cuda
// (when built with the cuda tag; see backend_cuda.go).

package main

import (
	"fmt"

	"github.com/nli-go/nli/model"
)

// cudaBackend is set by backend_cuda.go when the binary is built with CUDA.
var cudaBackend func() (model.Backend, error)

// switchable sets one of a backend's arithmetic switches (SetTF32 and the
// like); it reports whether the switch is now on, false for backends
// without it (the CPU).
func switchable[S any](b model.Backend, on bool, set func(S, bool)) bool {
	if s, ok := b.(S); ok {
		set(s, on)
		return on
	}
	return false
}

// The switches of the CUDA backend (each its Set method).
type (
	tf32Switch        interface{ SetTF32(on bool) }
	fastGELUSwitch    interface{ SetFastGELU(on bool) }
	fastGumbelSwitch  interface{ SetFastGumbel(on bool) }
	fusedGumbelSwitch interface{ SetFusedGumbel(on bool) }
	fastSoftmaxSwitch interface{ SetFastSoftmax(on bool) }
)

// tf32Usage is the help text of --tf32 where search is the work.
const tf32Usage = "TF32 tensor-core matrix products (cuda only; about 1e-3 relative error per product; false = float32)"

// setTF32 switches b's Gemm to TF32 (on) or float32 and reports whether b
// now uses TF32; backends without TF32 (the CPU) ignore it.
func setTF32(b model.Backend, on bool) bool {
	return switchable(b, on, tf32Switch.SetTF32)
}

// fastGELUUsage is the help text of --fast-gelu where search is the work.
const fastGELUUsage = "GELU and its backward in float32 (cuda only; within 1e-6 + 1e-5·|x| of the float64 default; search ran 1.33× instead of 1.19× the PyTorch reference on an H200 when it came; false = float64)"

// setFastGELU switches b's GELU to float32 (on) or float64 and reports
// whether b now runs it in float32; other backends ignore it.
func setFastGELU(b model.Backend, on bool) bool {
	return switchable(b, on, fastGELUSwitch.SetFastGELU)
}

// fastGumbelUsage is the help text of --fast-gumbel where search is the work.
const fastGumbelUsage = "Gumbel noise's −log(−log u) in float32 (cuda only; the same uniform draws, within 4e-6·(1 + |g|) of the float64 default; false = float64, the CPU's noise bit for bit)"

// setFastGumbel switches b's Gumbel noise to float32 (on) or float64 and
// reports whether b now draws it in float32; other backends ignore it.
func setFastGumbel(b model.Backend, on bool) bool {
	return switchable(b, on, fastGumbelSwitch.SetFastGumbel)
}

// fastSoftmaxUsage is the help text of --fast-softmax where search is the work.
const fastSoftmaxUsage = "the state softmax's exp and sum in float32 (cuda only; rows of up to 32 values; within 1e-5·|p| + 1e-7 of the float64 default; false = float64, the CPU's arithmetic)"

// setFastSoftmax switches b's softmax of short rows to float32 (on) or
// float64 and reports whether b now runs it in float32; other backends
// ignore it.
func setFastSoftmax(b model.Backend, on bool) bool {
	return switchable(b, on, fastSoftmaxSwitch.SetFastSoftmax)
}

// setFusedGumbel allows (on) or forbids b's softmax kernels to draw the
// search's state noise themselves (CUDA with fast Gumbel; the same values,
// no noise buffer) and reports whether b now does.
func setFusedGumbel(b model.Backend, on bool) bool {
	switchable(b, on, fusedGumbelSwitch.SetFusedGumbel)
	f, ok := b.(model.FusedGumbeler)
	return ok && f.FusedGumbel()
}

// newBackend returns the backend named by --device.
func newBackend(device string, workers int) (model.Backend, error) {
	if err := checkDevice(device); err != nil {
		return nil, err
	}
	if device == "cuda" {
		return cudaBackend()
	}
	return model.NewCPU(workers), nil
}

// checkDevice reports a --device that this binary cannot open, without
// opening it.
func checkDevice(device string) error {
	switch device {
	case "cpu":
		return nil
	case "cuda":
		if cudaBackend == nil {
			return fmt.Errorf("--device cuda: this binary was built without CUDA (build it with ./build.sh native)")
		}
		return nil
	}
	return fmt.Errorf("--device %q: want cpu or cuda", device)
}
