// Package cuda is the CUDA implementation of model.Backend: device memory
// through the driver API of gorgonia.org/cu (plain cuMemAlloc, never managed
// memory), matrix products through cuBLAS (gorgonia.org/cu/blas for Gemm, a
// strided-batched call for attention), and every other op as a kernel of
// package kernels (PTX compiled by nvcc, embedded). Each op mirrors the CPU
// reference of model/cpu.go in operation order and precision; the
// conformance suite (model/modeltest) checks them against it.
//
// Everything but this file carries the cuda build tag: build with
// ./build.sh native (docs/CUDA.md). Without the tag the package is empty.
//
// Errors: every driver and cuBLAS call is checked; the backend records the
// first failure (Err), and every op after it does nothing. Kernels that meet
// an index outside its range (a token, a class) skip it and raise a device
// flag that Sync and Download turn into an error naming the op.
//
// Threads: a CUDA context is current on one OS thread at a time. New creates
// the context on the calling thread; every method makes it current on the
// thread it runs on (with the goroutine locked to that thread for the call),
// so the backend may be used from any one goroutine at a time, tests'
// goroutines included. It is not safe for concurrent use.
package cuda
