// docs/experiments/gemmbench.cu: the search's matrix products timed with cuBLAS and cuBLASLt
// variants (sixth session; results in docs/CUDA.md "Not done"). Row-major C(M,N) = A(M,K)·op(B),
// B (N,K) for NT or (K,N) for NN, inputs zero-filled. On the GPU machine:
//   nvcc -std=c++20 -O2 -o gemmbench docs/experiments/gemmbench.cu -lcublas -lcublasLt && ./gemmbench
// Columns: cublasSgemm in TF32 math mode; cublasGemmEx on float32 data with FAST_16BF and FAST_16F
// compute; cuBLASLt with TF32 and with FAST_16BF compute, the first heuristic algorithm and the
// best of all returned (their count in parentheses). Times in microseconds, mean of 20 calls.
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cublasLt.h>
#define CK(x) do{ auto e=(x); if((int)e!=0){printf("err %d at %s:%d\n",(int)e,__FILE__,__LINE__); exit(1);} }while(0)
static float timeit(cudaEvent_t a, cudaEvent_t b, int reps, auto f){ for(int i=0;i<3;i++) f(); cudaEventRecord(a); for(int i=0;i<reps;i++) f(); cudaEventRecord(b); cudaEventSynchronize(b); float ms; cudaEventElapsedTime(&ms,a,b); return ms*1000/reps; }
int main(){
  int shapes[][3]={{51200,512,512},{51200,200,512},{51200,512,200},{153600,64,512},{153600,128,128}};
  float *A,*B,*C; size_t big=153600*512; CK(cudaMalloc(&A,big*4)); CK(cudaMalloc(&B,512*512*4)); CK(cudaMalloc(&C,big*4));
  cudaMemset(A,0,big*4); cudaMemset(B,0,512*512*4);
  cublasHandle_t h; CK(cublasCreate(&h)); CK(cublasSetMathMode(h,CUBLAS_TF32_TENSOR_OP_MATH));
  cublasLtHandle_t lt; CK(cublasLtCreate(&lt));
  void* ws; size_t wsz=32<<20; CK(cudaMalloc(&ws,wsz));
  cudaEvent_t e0,e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  float one=1,zero=0;
  for(auto&s:shapes) for(int nt=1;nt>=0;nt--){
    int M=s[0],N=s[1],K=s[2];
    // column-major: C^T(N,M) = op(B)^T (N,K) · A^T (K,M)
    cublasOperation_t ob = nt? CUBLAS_OP_T: CUBLAS_OP_N; int ldb = nt? K: N;
    float t_tf32=timeit(e0,e1,20,[&]{ cublasSgemm(h,ob,CUBLAS_OP_N,N,M,K,&one,B,ldb,A,K,&zero,C,N); });
    float t_bf=timeit(e0,e1,20,[&]{ cublasGemmEx(h,ob,CUBLAS_OP_N,N,M,K,&one,B,CUDA_R_32F,ldb,A,CUDA_R_32F,K,&zero,C,CUDA_R_32F,N,CUBLAS_COMPUTE_32F_FAST_16BF,CUBLAS_GEMM_DEFAULT); });
    float t_f16=timeit(e0,e1,20,[&]{ cublasGemmEx(h,ob,CUBLAS_OP_N,N,M,K,&one,B,CUDA_R_32F,ldb,A,CUDA_R_32F,K,&zero,C,CUDA_R_32F,N,CUBLAS_COMPUTE_32F_FAST_16F,CUBLAS_GEMM_DEFAULT); });
    // cublasLt TF32 and BF16-fast, all heuristic algos
    float best[2]={1e9,1e9}; int nalg[2]={0,0}; float first[2]={0,0};
    for(int mode=0;mode<2;mode++){
      cublasLtMatmulDesc_t op; CK(cublasLtMatmulDescCreate(&op, mode? CUBLAS_COMPUTE_32F_FAST_16BF: CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_32F));
      CK(cublasLtMatmulDescSetAttribute(op,CUBLASLT_MATMUL_DESC_TRANSA,&ob,sizeof(ob)));
      cublasLtMatrixLayout_t la,lb,lc;
      if(nt) CK(cublasLtMatrixLayoutCreate(&la,CUDA_R_32F,K,N,K)); else CK(cublasLtMatrixLayoutCreate(&la,CUDA_R_32F,N,K,N));
      CK(cublasLtMatrixLayoutCreate(&lb,CUDA_R_32F,K,M,K)); CK(cublasLtMatrixLayoutCreate(&lc,CUDA_R_32F,N,M,N));
      cublasLtMatmulPreference_t pr; CK(cublasLtMatmulPreferenceCreate(&pr));
      CK(cublasLtMatmulPreferenceSetAttribute(pr,CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,&wsz,sizeof(wsz)));
      cublasLtMatmulHeuristicResult_t res[16]; int got=0;
      CK(cublasLtMatmulAlgoGetHeuristic(lt,op,la,lb,lc,lc,pr,16,res,&got)); nalg[mode]=got;
      for(int i=0;i<got;i++){ float t=timeit(e0,e1,20,[&]{ cublasLtMatmul(lt,op,&one,B,la,A,lb,&zero,C,lc,C,lc,&res[i].algo,ws,wsz,0); }); if(i==0) first[mode]=t; if(t<best[mode]) best[mode]=t; }
    }
    double fl=2.0*M*N*K;
    printf("%6dx%3dx%3d %s  sgemm-tf32 %6.1fus (%4.0fTF)  gemmex-bf16 %6.1fus  gemmex-f16 %6.1fus  lt-tf32 first %6.1f best %6.1f (%d)  lt-bf16 first %6.1f best %6.1f (%d)\n",
      M,N,K,nt?"NT":"NN",t_tf32,fl/t_tf32/1e6,t_bf,t_f16,first[0],best[0],nalg[0],first[1],best[1],nalg[1]);
  }
  return 0;
}
