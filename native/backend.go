// Backend selection for the command line: --device cpu (always) or cuda
// (when built with the cuda tag; see backend_cuda.go).

package main

import (
	"fmt"

	"github.com/nli-go/nli/model"
)

// cudaBackend is set by backend_cuda.go when the binary is built with CUDA.
var cudaBackend func() (model.Backend, error)

// newBackend returns the backend named by --device.
func newBackend(device string, workers int) (model.Backend, error) {
	switch device {
	case "cpu":
		return model.NewCPU(workers), nil
	case "cuda":
		if cudaBackend == nil {
			return nil, fmt.Errorf("--device cuda: this binary was built without CUDA (build it with ./build.sh native)")
		}
		return cudaBackend()
	}
	return nil, fmt.Errorf("--device %q: want cpu or cuda", device)
}
