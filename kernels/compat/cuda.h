/*
 * kernels/compat/cuda.h: lets gorgonia.org/cu v0.9.6 (written for the CUDA
 * 10/11 driver API) compile against CUDA 13 headers. Put this folder first on
 * the include path (CGO_CFLAGS="-I<repo>/kernels/compat -I$CUDA_HOME/include");
 * it includes the real cuda.h and, for CUDA 13 and later, maps back the five
 * calls whose signatures changed. The driver still exports the old entry
 * points (checked with nm -D on libcuda.so), so the old prototypes link and
 * run. See docs/CUDA.md.
 */
#ifndef NLI_COMPAT_CUDA_H
#define NLI_COMPAT_CUDA_H

#include_next <cuda.h>

#if defined(CUDA_VERSION) && CUDA_VERSION >= 13000

#undef cuCtxCreate
#undef cuMemAdvise
#undef cuMemPrefetchAsync
#undef cuGraphAddDependencies
#undef cuGraphGetEdges

#ifdef __cplusplus
extern "C" {
#endif

/* cuCtxCreate took (pctx, flags, dev) until CUDA 12; CUDA 13 maps the name to
 * cuCtxCreate_v4 with a params struct. The _v2 entry point keeps the old
 * signature (the header declares it among its legacy prototypes too). */
CUresult CUDAAPI cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev);
#define cuCtxCreate cuCtxCreate_v2

/* Before CUDA 13 these took a device ordinal rather than a CUmemLocation, and
 * the graph calls took no edge data. */
CUresult CUDAAPI cuMemAdvise(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUdevice device);
CUresult CUDAAPI cuMemPrefetchAsync(CUdeviceptr devPtr, size_t count, CUdevice dstDevice, CUstream hStream);
CUresult CUDAAPI cuGraphAddDependencies(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to, size_t numDependencies);
CUresult CUDAAPI cuGraphGetEdges(CUgraph hGraph, CUgraphNode *from, CUgraphNode *to, size_t *numEdges);

#ifdef __cplusplus
}
#endif

#endif /* CUDA_VERSION >= 13000 */

#endif /* NLI_COMPAT_CUDA_H */
