// kernels/hostcheck.h: declarations that let a host C++ compiler parse
// kernels/*.cu for a syntax and type check where there is no nvcc
// (./build.sh kernels-check: g++ -fsyntax-only -include kernels/hostcheck.h).
// It catches typos and type errors, not device-specific ones; only nvcc
// (./build.sh kernels, native/gpu_kernels_check.sh) makes the PTX.

#include <math.h>
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__
struct dim3s { unsigned x, y, z; };
extern dim3s threadIdx, blockIdx, blockDim, gridDim;
void __syncthreads();
void __syncwarp(unsigned m = 0xffffffffu);
long long __double_as_longlong(double);
double __longlong_as_double(long long);
float __int_as_float(int);
int __float_as_int(float);
int atomicCAS(int*, int, int);
int atomicAdd(int*, int);
float atomicAdd(float*, float);
double atomicAdd(double*, double);
template <class T> T __shfl_xor_sync(unsigned, T, int, int w = 32);
template <class T> T __shfl_sync(unsigned, T, int, int w = 32);
template <class T> T __shfl_down_sync(unsigned, T, int, int w = 32);
template <class T> T __ldg(const T*);
struct float4 { float x, y, z, w; };
struct double2 { double x, y; };
float __expf(float); float __logf(float);
