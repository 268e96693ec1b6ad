// kernels/reduce.cu: the CUDA backend's reductions (native/cuda), all in
// float64 and all deterministic: every sum is taken in a fixed order that
// depends only on the sizes, never on scheduling (no atomics).
//
// Column sums over many rows (bias and LayerNorm gradients, the embedding
// gradients, the reuse regulariser's per-column sums) run in two passes: a
// *_partial kernel with blocks of 32 columns × 8 row lanes, grid (column
// blocks, chunks, Z), writes one float64 partial per (z, chunk, column) to
// partial[(z·chunks + chunk)·C + c]; then col_finish (or reuse_finish) adds
// the chunks in order. Z indexes independent destination rows (e.g. one per
// embedding table row). Whole-tensor sums (SumSquares, NLL, the regulariser's
// total) use one block tree per fixed-size piece.
//
// Calling convention as in elementwise.cu: 8-byte parameters only.

#define COL_BLOCK 32
#define ROW_LANES 8

#define THREAD_LOOP(i, n)                                                         \
	for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
	     i += (long long)gridDim.x * blockDim.x)

__device__ __forceinline__ void flag_error(int *err, long long code) {
	atomicCAS(err, 0, (int)code);
}

__device__ __forceinline__ long long min_ll(long long a, long long b) { return a < b ? a : b; }

// col_reduce sums f(z, r, c) over the rows r of this block's chunk of
// [0, rows), for the block's 32 columns, and writes the partial. Launch with
// blockDim (32, 8) and gridDim (ceil(C/32), chunks, Z).
template <class F>
__device__ void col_reduce(double *partial, long long rows, long long C, F f) {
	__shared__ double sh[ROW_LANES][COL_BLOCK + 1];
	long long chunks = gridDim.y, chunk = blockIdx.y, z = blockIdx.z;
	long long c = (long long)blockIdx.x * COL_BLOCK + threadIdx.x;
	long long per = (rows + chunks - 1) / chunks;
	long long r0 = chunk * per, r1 = min_ll(rows, r0 + per);
	double s = 0;
	if (c < C) {
		for (long long r = r0 + threadIdx.y; r < r1; r += ROW_LANES) {
			s += f(z, r, c);
		}
	}
	sh[threadIdx.y][threadIdx.x] = s;
	__syncthreads();
	if (threadIdx.y == 0 && c < C) {
		double t = 0;
		for (int j = 0; j < ROW_LANES; j++) {
			t += sh[j][threadIdx.x];
		}
		partial[(z * chunks + chunk) * C + c] = t;
	}
}

// sum_rows_partial: Σ_n dout[z,n,c] over the N rows of each of Z groups
// (dout (Z,N,C); SumRows has Z = 1).
extern "C" __global__ void sum_rows_partial(double *partial, const float *dout, long long N, long long C) {
	col_reduce(partial, N, C, [=](long long z, long long r, long long c) { return (double)dout[(z * N + r) * C + c]; });
}

// layernorm_backward_wb_partial: z = 0: Σ_n norm·dout (dw); z = 1: Σ_n dout
// (db); norm = (inp−mean)·rstd in float32 as the CPU.
extern "C" __global__ void layernorm_backward_wb_partial(double *partial, const float *dout, const float *inp,
                                                         const float *mean, const float *rstd, long long N,
                                                         long long C) {
	col_reduce(partial, N, C, [=](long long z, long long r, long long c) {
		float g = dout[r * C + c];
		if (z == 1) {
			return (double)g;
		}
		float norm = (inp[r * C + c] - mean[r]) * rstd[r];
		return (double)(norm * g);
	});
}

// pair_embed_backward_partial: the destination rows z are, in order, the V
// rows of val, the L rows of pos, the 3 rows of chn and the T rows of slot;
// dout (N,2L+T,C), x,y (N,L) int. For a val row the summed rows are the N·L
// (n,l) token slots (x and y both); for pos the N sequences; for chn 0 and 1
// the N·L token slots, for chn 2 the N·T slot tokens; for slot the N
// sequences. Every z runs over max(N·L, N·T) rows, the unused ones adding 0.
extern "C" __global__ void pair_embed_backward_partial(double *partial, const float *dout, const int *x,
                                                       const int *y, long long N, long long L, long long T,
                                                       long long C, long long V) {
	long long S = 2 * L + T;
	long long rows = N * (L > T ? L : T);
	col_reduce(partial, rows, C, [=](long long z, long long r, long long c) {
		double s = 0;
		if (z < V) { // val row z: slots (n,l) with x == z or y == z
			if (r < N * L) {
				long long n = r / L, l = r % L;
				if (x[r] == z) {
					s += (double)dout[(n * S + l) * C + c];
				}
				if (y[r] == z) {
					s += (double)dout[(n * S + L + l) * C + c];
				}
			}
			return s;
		}
		z -= V;
		if (z < L) { // pos row z: Σ_n gx + gy at l = z
			if (r < N) {
				s += (double)dout[(r * S + z) * C + c];
				s += (double)dout[(r * S + L + z) * C + c];
			}
			return s;
		}
		z -= L;
		if (z < 2) { // chn rows 0, 1: Σ over every x (or y) token
			if (r < N * L) {
				long long n = r / L, l = r % L;
				s = (double)dout[(n * S + z * L + l) * C + c];
			}
			return s;
		}
		if (z == 2) { // chn row 2: Σ over every slot token
			if (r < N * T) {
				long long n = r / T, t = r % T;
				s = (double)dout[(n * S + 2 * L + t) * C + c];
			}
			return s;
		}
		z -= 3; // slot row z: Σ_n
		if (r < N) {
			s = (double)dout[(r * S + 2 * L + z) * C + c];
		}
		return s;
	});
}

// reuse_sums_partial: Σ_n log1p(−min(q[n,d], 1−1e-6)). Z = 1.
extern "C" __global__ void reuse_sums_partial(double *partial, const float *q, long long N, long long D) {
	col_reduce(partial, N, D, [=](long long, long long r, long long c) {
		double v = (double)q[r * D + c];
		if (!(v != v) && v > 0.999999) { // min, NaN propagating as Go's min
			v = 0.999999;
		}
		return log1p(-v);
	});
}

// col_finish adds the chunks of each (z, c) in order and accumulates the
// float32 result into one of up to four destination tensors: z in
// [0, z0) → o0, [z0, z0+z1) → o1, and so on; a null destination is skipped.
extern "C" __global__ void col_finish(const double *partial, long long chunks, long long C, float *o0, long long z0,
                                      float *o1, long long z1, float *o2, long long z2, float *o3, long long z3) {
	long long Z = z0 + z1 + z2 + z3;
	THREAD_LOOP(i, Z * C) {
		long long z = i / C, c = i % C;
		double s = 0;
		for (long long k = 0; k < chunks; k++) {
			s += partial[(z * chunks + k) * C + c];
		}
		float *o;
		if (z < z0) {
			o = o0;
		} else if ((z -= z0) < z1) {
			o = o1;
		} else if ((z -= z1) < z2) {
			o = o2;
		} else {
			z -= z2;
			o = o3;
		}
		if (o) {
			o[z * C + c] += (float)s;
		}
	}
}

// reuse_finish: S[d] = Σ_chunks partial, kept in float64 for the backward.
extern "C" __global__ void reuse_finish(double *S, const double *partial, long long chunks, long long D) {
	THREAD_LOOP(d, D) {
		double s = 0;
		for (long long k = 0; k < chunks; k++) {
			s += partial[k * D + d];
		}
		S[d] = s;
	}
}

// block_sum returns the sum of v over the block (blockDim.x a power of two,
// at most 1024) to thread 0, by a fixed tree in shared memory.
__device__ double block_sum(double v) {
	__shared__ double sh[1024];
	sh[threadIdx.x] = v;
	__syncthreads();
	for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
		if (threadIdx.x < s) {
			sh[threadIdx.x] += sh[threadIdx.x + s];
		}
		__syncthreads();
	}
	return sh[0];
}

// reuse_total: out[0] = Σ_d (1 − exp(S[d])). One block.
extern "C" __global__ void reuse_total(float *out, const double *S, long long D) {
	double s = 0;
	for (long long d = threadIdx.x; d < D; d += blockDim.x) {
		s += 1 - exp(S[d]);
	}
	s = block_sum(s);
	if (threadIdx.x == 0) {
		out[0] = (float)s;
	}
}

// sum_squares_partial: partial[b] = Σ x² over the piece [b·piece, (b+1)·piece)
// of x (one block per piece, a grid-stride loop over pieces).
extern "C" __global__ void sum_squares_partial(double *partial, const float *x, long long n, long long piece) {
	long long pieces = (n + piece - 1) / piece;
	for (long long b = blockIdx.x; b < pieces; b += gridDim.x) {
		long long lo = b * piece, hi = min_ll(n, lo + piece);
		double s = 0;
		for (long long i = lo + threadIdx.x; i < hi; i += blockDim.x) {
			double v = (double)x[i];
			s += v * v;
		}
		s = block_sum(s);
		if (threadIdx.x == 0) {
			partial[b] = s;
		}
		__syncthreads(); // sh is reused by the next piece
	}
}

// sum_finish: out[0] = Σ partial (one block).
extern "C" __global__ void sum_finish(float *out, const double *partial, long long n) {
	double s = 0;
	for (long long i = threadIdx.x; i < n; i += blockDim.x) {
		s += partial[i];
	}
	s = block_sum(s);
	if (threadIdx.x == 0) {
		out[0] = (float)s;
	}
}

// nll_term is row n's −log(max(p[n,y[n]], 1e-8)), NaN propagating as Go's
// max; a target outside [0, V) flags code and counts 0.
__device__ __forceinline__ double nll_term(const float *p, const int *y, long long n, long long V, int *err,
                                           long long code) {
	int t = y[n];
	if (t < 0 || t >= V) {
		flag_error(err, code);
		return 0;
	}
	double pv = (double)p[n * V + t];
	if (!(pv != pv) && pv < 1e-8) {
		pv = 1e-8;
	}
	return -log(pv);
}

// nll: out[0] = scale·Σ_n −log(max(p[n,y[n]], 1e-8)). One block.
extern "C" __global__ void nll(float *out, const float *p, const int *y, long long N, long long V, double scale,
                               int *err, long long code) {
	double s = 0;
	for (long long n = threadIdx.x; n < N; n += blockDim.x) {
		s += nll_term(p, y, n, V, err, code);
	}
	s = block_sum(s);
	if (threadIdx.x == 0) {
		out[0] = (float)(scale * s);
	}
}

// nll_partial: partial[b] = Σ_n −log(max(p[n,y[n]], 1e-8)) over the rows
// [b·piece, (b+1)·piece) of N, as nll does for all rows: one block per piece
// (a grid-stride loop over pieces), so that a large N uses every SM instead
// of one block. nll_finish adds the pieces in a fixed tree.
extern "C" __global__ void nll_partial(double *partial, const float *p, const int *y, long long N, long long V,
                                       long long piece, int *err, long long code) {
	long long pieces = (N + piece - 1) / piece;
	for (long long b = blockIdx.x; b < pieces; b += gridDim.x) {
		long long lo = b * piece, hi = min_ll(N, lo + piece);
		double s = 0;
		for (long long n = lo + threadIdx.x; n < hi; n += blockDim.x) {
			s += nll_term(p, y, n, V, err, code);
		}
		s = block_sum(s);
		if (threadIdx.x == 0) {
			partial[b] = s;
		}
		__syncthreads(); // sh is reused by the next piece
	}
}

// nll_finish: out[0] = scale·Σ partial (one block).
extern "C" __global__ void nll_finish(float *out, const double *partial, long long n, double scale) {
	double s = 0;
	for (long long i = threadIdx.x; i < n; i += blockDim.x) {
		s += partial[i];
	}
	s = block_sum(s);
	if (threadIdx.x == 0) {
		out[0] = (float)(scale * s);
	}
}

// pool_pairs: loo: out[b,i,:] = (Σ_j inp[b,j,:] − inp[b,i,:])/(m−1), out
// (B,m,C); mean: out[b,:] = Σ_j inp[b,j,:]/m, out (B,C); inp (B,m,C); in
// float64. One thread per (b, c).
extern "C" __global__ void pool_pairs(float *out, const float *inp, long long B, long long m, long long C,
                                      long long loo) {
	THREAD_LOOP(i, B * C) {
		long long b = i / C, c = i % C;
		const float *x = inp + b * m * C + c;
		double s = 0;
		for (long long j = 0; j < m; j++) {
			s += (double)x[j * C];
		}
		if (loo) {
			for (long long j = 0; j < m; j++) {
				out[(b * m + j) * C + c] = (float)((s - (double)x[j * C]) / (double)(m - 1));
			}
		} else {
			out[i] = (float)(s / (double)m);
		}
	}
}

// pool_pairs_backward: loo: dinp[b,j,:] += (Σ_i dout[b,i,:] − dout[b,j,:])/(m−1);
// mean: dinp[b,j,:] += dout[b,:]/m. One thread per (b, c).
extern "C" __global__ void pool_pairs_backward(float *dinp, const float *dout, long long B, long long m, long long C,
                                               long long loo) {
	THREAD_LOOP(i, B * C) {
		long long b = i / C, c = i % C;
		float *d = dinp + b * m * C + c;
		if (!loo) {
			float g = (float)((double)dout[i] / (double)m);
			for (long long j = 0; j < m; j++) {
				d[j * C] += g;
			}
			continue;
		}
		const float *g = dout + b * m * C + c;
		double s = 0;
		for (long long j = 0; j < m; j++) {
			s += (double)g[j * C];
		}
		for (long long j = 0; j < m; j++) {
			d[j * C] += (float)((s - (double)g[j * C]) / (double)(m - 1));
		}
	}
}

// repeat_rows_backward: dinp[r,:] += Σ_j dout[r,j,:], in float64. One
// thread per (r, c).
extern "C" __global__ void repeat_rows_backward(float *dinp, const float *dout, long long R, long long m,
                                                long long C) {
	THREAD_LOOP(i, R * C) {
		long long r = i / C, c = i % C;
		double s = 0;
		for (long long j = 0; j < m; j++) {
			s += (double)dout[(r * m + j) * C + c];
		}
		dinp[i] += (float)s;
	}
}
