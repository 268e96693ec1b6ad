//go:build cuda

// With the cuda tag (./build.sh native), --device cuda runs on the GPU
// through native/cuda.

package main

import (
	"github.com/nli-go/nli/model"
	"github.com/nli-go/nli/native/cuda"
)

func init() {
	cudaBackend = func() (model.Backend, error) {
		b, err := cuda.New()
		if err != nil {
			return nil, err
		}
		return b, nil
	}
}
