// kernels/rows.cu: the CUDA backend's row ops (native/cuda): one warp per
// row, lanes striding over the row's elements, float64 sums reduced with a
// fixed butterfly of warp shuffles (deterministic); for short rows (softmax
// with K ≤ 32) one thread per row, staged through shared memory. Each kernel mirrors the
// method of the same name in model/cpu.go in operation order and precision.
// The Gumbel noise kernels live here too, beside the softmax kernels that
// draw the same noise themselves (fused noise).
//
// Calling convention as in elementwise.cu: 8-byte parameters only; rows run
// in a grid-stride loop over warps, so any grid size is correct. Launch with
// blockDim.x a multiple of 32.

#define FULL_MASK 0xffffffffu

#define WARP_LOOP(row, rows)                                                                \
	for (long long row = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / 32; row < (rows); \
	     row += (long long)gridDim.x * blockDim.x / 32)

#define THREAD_LOOP(i, n)                                                         \
	for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
	     i += (long long)gridDim.x * blockDim.x)

__device__ __forceinline__ double warp_sum(double v) {
	for (int o = 16; o > 0; o >>= 1) {
		v += __shfl_xor_sync(FULL_MASK, v, o);
	}
	return v;
}

__device__ __forceinline__ float warp_max(float v) {
	for (int o = 16; o > 0; o >>= 1) {
		v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
	}
	return v;
}

__device__ __forceinline__ void flag_error(int *err, long long code) {
	atomicCAS(err, 0, (int)code);
}

// layernorm: out = (inp−mean)·rstd·w + b over C, eps 1e-5; mean and variance
// in float64; saves mean, rstd (N) as float32.
extern "C" __global__ void layernorm(float *out, float *mean, float *rstd, const float *inp, const float *w,
                                     const float *b, long long N, long long C) {
	int lane = threadIdx.x % 32;
	WARP_LOOP(n, N) {
		const float *x = inp + n * C;
		double s = 0;
		for (long long i = lane; i < C; i += 32) {
			s += (double)x[i];
		}
		double m = warp_sum(s) / (double)C;
		double ss = 0;
		for (long long i = lane; i < C; i += 32) {
			double d = (double)x[i] - m;
			ss += d * d;
		}
		double rs = 1 / sqrt(warp_sum(ss) / (double)C + 1e-5);
		float mf = (float)m, rf = (float)rs;
		if (lane == 0) {
			mean[n] = mf;
			rstd[n] = rf;
		}
		float *o = out + n * C;
		for (long long i = lane; i < C; i += 32) {
			o[i] = (x[i] - mf) * rf * w[i] + b[i];
		}
	}
}

// layernorm_backward_inp: dinp[n,:] += rstd·(dnorm − mean(dnorm) −
// norm·mean(dnorm·norm)), dnorm = w·dout, norm = (inp−mean)·rstd.
extern "C" __global__ void layernorm_backward_inp(float *dinp, const float *dout, const float *inp, const float *w,
                                                  const float *mean, const float *rstd, long long N, long long C) {
	int lane = threadIdx.x % 32;
	WARP_LOOP(n, N) {
		const float *x = inp + n * C, *g = dout + n * C;
		float mf = mean[n], rf = rstd[n];
		double dm = 0, dnm = 0;
		for (long long i = lane; i < C; i += 32) {
			float norm = (x[i] - mf) * rf;
			float dn = w[i] * g[i];
			dm += (double)dn;
			dnm += (double)(dn * norm);
		}
		float dmf = (float)(warp_sum(dm) / (double)C), dnmf = (float)(warp_sum(dnm) / (double)C);
		float *di = dinp + n * C;
		for (long long i = lane; i < C; i += 32) {
			float norm = (x[i] - mf) * rf;
			float dn = w[i] * g[i];
			di[i] += (dn - dmf - norm * dnmf) * rf;
		}
	}
}

// The state update (model.Backend's SoftmaxMix) rides on the softmax
// The search's and the training's Gumbel noise. gumbel_k is the top 24 bits
// of a SplitMix64 finaliser of seed and index i (model.GumbelUniform's
// draw); gumbel (float64, Go's log: the CPU's noise bit for bit) and
// gumbel32 (float32) turn it into −log(−log u).
__device__ __forceinline__ unsigned int gumbel_k(unsigned long long seed, unsigned long long i) {
	unsigned long long z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	return (unsigned int)(z >> 40);
}

// gumbel_uniform is model.GumbelUniform: u = (k + 0.5)/2^24 exactly, k =
// gumbel_k(seed, i).
__device__ __forceinline__ double gumbel_uniform(unsigned long long seed, unsigned long long i) {
	return ((double)gumbel_k(seed, i) + 0.5) / 16777216.0;
}

// go_log is Go's math.Log for positive finite x: the FreeBSD algorithm,
// the same IEEE operations in the same order as math's log.go and its amd64
// assembly (which reduces with f1 <= √2/2 where log.go has <; it matters for
// one mantissa value only). CUDA's log() may differ in the last bit, and
// through −log(−log u) near u = 1/e that changed 1 float32 noise value in
// 3.4·10⁷ (measured on an H200); with go_log the noise matches the CPU's
// bit for bit. Needs -fmad=false (no contraction into fused multiply-add).
__device__ double go_log(double x) {
	const double Ln2Hi = 6.93147180369123816490e-01; // 3fe62e42 fee00000
	const double Ln2Lo = 1.90821492927058770002e-10; // 3dea39ef 35793c76
	const double L1 = 6.666666666666735130e-01;      // 3FE55555 55555593
	const double L2 = 3.999999999940941908e-01;      // 3FD99999 9997FA04
	const double L3 = 2.857142874366239149e-01;      // 3FD24924 94229359
	const double L4 = 2.222219843214978396e-01;      // 3FCC71C5 1D8E78AF
	const double L5 = 1.818357216161805012e-01;      // 3FC74664 96CB03DE
	const double L6 = 1.531383769920937332e-01;      // 3FC39A09 D078C69F
	const double L7 = 1.479819860511658591e-01;      // 3FC2F112 DF3E5244
	const double HSqrt2 = 7.07106781186547524401e-01; // √2/2
	if (!(x > 0) || x == __longlong_as_double(0x7ff0000000000000ll)) {
		return log(x); // NaN, ±0, negative, +Inf: never drawn here
	}
	// f1, ki := math.Frexp(x): x = f1·2^ki, f1 in [0.5, 1)
	unsigned long long bits = __double_as_longlong(x);
	int ki = 0;
	if ((bits >> 52) == 0) { // subnormal: normalise first, as Frexp
		x *= 4503599627370496.0; // 2^52
		bits = __double_as_longlong(x);
		ki = -52;
	}
	ki += (int)((bits >> 52) & 0x7ff) - 1022;
	double f1 = __longlong_as_double((long long)((bits & 0x000fffffffffffffull) | 0x3fe0000000000000ull));
	if (f1 <= HSqrt2) {
		f1 *= 2;
		ki--;
	}
	double f = f1 - 1;
	double k = (double)ki;
	double s = f / (2 + f);
	double s2 = s * s;
	double s4 = s2 * s2;
	double t1 = s2 * (L1 + s4 * (L3 + s4 * (L5 + s4 * L7)));
	double t2 = s4 * (L2 + s4 * (L4 + s4 * L6));
	double R = t1 + t2;
	double hfsq = 0.5 * f * f;
	return k * Ln2Hi - ((hfsq - (s * (hfsq + R) + k * Ln2Lo)) - f);
}

// gumbel: dst[i] = −log(−log(u)), u = GumbelUniform(seed, i), in double
// with Go's log (go_log), so the noise is the CPU's bit for bit.
extern "C" __global__ void gumbel(float *dst, unsigned long long seed, long long n) {
	THREAD_LOOP(i, n) {
		double u = gumbel_uniform(seed, (unsigned long long)i);
		dst[i] = (float)(-go_log(-go_log(u)));
	}
}

// gumbel32 is gumbel_f32's value at index i: the draw of gumbel (u = GumbelUniform(seed, i) = (2k+1)/2^25, k the top 24 bits of a
// SplitMix64 finaliser of seed and i) with −log(−log u) in float32 (CUDA's
// fast __logf, and log1pf): a few 1e-7 from gumbel's float64 value
// (TestFastGumbel bounds it by 4e-6·(1 + |exact|); __logf is within 2^−21.4
// absolute on [½, 2] and 3 ulps elsewhere, and was +0.9% of search speed
// against logf, twelfth session). −log u is −__logf(u) for u < 1/2 and
// −log1pf(−(1−u)) above, each from an exact float32 (2k+1 < 2^24 in the first
// case, 2^25−2k−1 < 2^24 in the second), so it is never 0 and the result is
// always finite (u = 1 − 2^−25 gives 17.33…).
__device__ __forceinline__ float gumbel32(unsigned long long seed, unsigned long long i) {
	unsigned int k = gumbel_k(seed, i); // 0 … 2^24 − 1
	float e;                                  // −log u > 0
	if (k < (1u << 23)) {
		e = -__logf((float)(2 * k + 1) * 2.98023223876953125e-8f); // 2^−25
	} else {
		e = -log1pf(-(float)((1u << 25) - 2 * k - 1) * 2.98023223876953125e-8f);
	}
	return -__logf(e);
}

// gumbel_f32: dst[i] = gumbel32(seed, i), the search's noise (SetFastGumbel).
// Here rather than beside gumbel in elementwise.cu so that the softmax
// kernels below, which draw the same noise themselves (fused noise), share
// gumbel32 with it.
extern "C" __global__ void gumbel_f32(float *dst, unsigned long long seed, long long n) {
	THREAD_LOOP(i, n) { dst[i] = gumbel32(seed, (unsigned long long)i); }
}

// Fused noise: with noff ≥ 0 (and noise null) the softmax kernels add
// gumbel32(nseed, noff + i) to element i of logits instead of reading
// noise[i], the value gumbel_f32 would have written at index noff + i of its
// buffer (model.GumbelNoise). noff < 0: no fused noise.

// kernels: softmax row r (of K) is part of gate row r / rpg (rpg = D/K rows;
// gate g = z[gate·Kz + skip]) and, with a bias, takes bias[(r mod rpb)·K + k]
// (rpb = Db/K). mix null: a plain softmax (the other state arguments unused).

// softmax: out[n,:] = softmax((logits[n,:] + bias + noise[n,:])/tau) over K,
// the row maximum subtracted; exp and sum in float64. bias and noise may be
// null; with mix, also mix[n,:] = g·prev[n,:] + (1−g)·out[n,:]. out may
// alias logits (each lane reads and writes only its own elements), which the
// attention forward uses in place with tau = 1.
extern "C" __global__ void softmax(float *out, const float *logits, const float *noise, double tau, long long N,
                                   long long K, const float *bias, long long Db, float *mix, const float *prev,
                                   const float *z, long long D, long long Kz, long long skip,
                                   unsigned long long nseed, long long noff) {
	int lane = threadIdx.x % 32;
	float t = (float)tau;
	WARP_LOOP(n, N) {
		const float *l = logits + n * K;
		const float *bs = bias ? bias + (n % (Db / K)) * K : 0;
		float *o = out + n * K;
		float maxv = __int_as_float(0xff800000); // -Inf
		for (long long k = lane; k < K; k += 32) {
			float v = l[k];
			if (bs) {
				v += bs[k];
			}
			if (noise) {
				v += noise[n * K + k];
			} else if (noff >= 0) {
				v += gumbel32(nseed, (unsigned long long)(noff + n * K + k));
			}
			v /= t;
			o[k] = v;
			maxv = fmaxf(maxv, v);
		}
		maxv = warp_max(maxv);
		double sum = 0;
		for (long long k = lane; k < K; k += 32) {
			double e = exp((double)(o[k] - maxv));
			o[k] = (float)e;
			sum += e;
		}
		double inv = 1 / warp_sum(sum);
		float g = mix ? z[(n / (D / K)) * Kz + skip] : 0;
		for (long long k = lane; k < K; k += 32) {
			float h = (float)((double)o[k] * inv);
			o[k] = h;
			if (mix) {
				mix[n * K + k] = g * prev[n * K + k] + (1 - g) * h;
			}
		}
	}
}

// softmax_backward: dlogits += out⊙(dh − Σ_k dh·out)/tau, in float64, with
// dh = dout, or with z (SoftmaxMix's backward but dz, which the host
// computes with skip_mix_backward) dh = (1−g)·dout and dprev += g·dout.
// acc's bits (model.SkipMixAcc): 2 dlogits, 1 dprev accumulate; a clear bit
// overwrites (the tape's first write). dlogits and dprev may be null.
extern "C" __global__ void softmax_backward(float *dlogits, const float *dout, const float *out, double tau,
                                            long long N, long long K, long long acc, float *dprev, const float *z,
                                            long long D, long long Kz, long long skip) {
	int lane = threadIdx.x % 32;
	bool al = acc & 2, ap = acc & 1;
	double inv = 1 / (double)(float)tau;
	WARP_LOOP(n, N) {
		const float *p = out + n * K, *g = dout + n * K;
		float s = 1;
		if (z) {
			float gate = z[(n / (D / K)) * Kz + skip];
			s = 1 - gate;
			if (dprev) {
				float *dp = dprev + n * K;
				for (long long k = lane; k < K; k += 32) {
					dp[k] = ap ? dp[k] + gate * g[k] : gate * g[k];
				}
			}
		}
		if (!dlogits) {
			continue;
		}
		double dot = 0;
		for (long long k = lane; k < K; k += 32) {
			dot += (double)p[k] * (double)(s * g[k]);
		}
		dot = warp_sum(dot);
		float *dl = dlogits + n * K;
		for (long long k = lane; k < K; k += 32) {
			float v = (float)((double)p[k] * ((double)(s * g[k]) - dot) * inv);
			dl[k] = al ? dl[k] + v : v;
		}
	}
}

// Short rows (K ≤ SMALL_K): one thread per row instead of one warp, so that
// no lanes idle and no shuffles run. A block of SMALL_ROWS threads takes a
// chunk of SMALL_ROWS consecutive rows (SMALL_ROWS·K contiguous floats) in a
// grid-stride loop: the chunk is staged through shared memory with
// coalesced loads (element e of the chunk by thread e mod SMALL_ROWS), each
// thread then runs its row sequentially, in the CPU's order (model/cpu.go's
// softmaxJob), and results go back with coalesced stores. Rows are padded to
// an odd stride SMALL_PAD(K) in shared memory, so that the per-row loops hit
// 32 different banks. Launch with blockDim.x == SMALL_ROWS (launch.go's
// smallRows).
#define SMALL_ROWS 128
#define SMALL_K 32
#define SMALL_PAD(K) ((K) | 1)

// SMALL_BATCH: the staging loops take SMALL_BATCH elements per thread per
// pass (e0, e0 + SMALL_ROWS, …), loading them all before using any, so that
// each thread has several loads in flight (one at a time left the loops
// latency-bound). A kernel-internal constant: native/ptx_variants.sh
// compiles other values (-DSMALL_BATCH=8) to compare them on the GPU.
#ifndef SMALL_BATCH
#define SMALL_BATCH 4
#endif
#define BATCH_LOOP(e0, cnt) for (int e0 = threadIdx.x; e0 < (cnt); e0 += SMALL_BATCH * SMALL_ROWS)
#define BATCH_EACH(u, e, e0, cnt) \
	_Pragma("unroll") for (int u = 0, e = (e0); u < SMALL_BATCH; u++, e += SMALL_ROWS) if (e < (cnt))

// small_div is e / k for the small kernels' element indices (0 ≤ e <
// SMALL_ROWS·SMALL_K = 4096, 1 ≤ k ≤ SMALL_K) from kinv = 1/k in float:
// (e + ½)/k is at least ½/k from an integer and float's relative error here
// is under 2⁻²², which moves it by less than 2⁻¹⁰/k, so truncation gives the
// exact quotient. A 32-bit integer division by a variable is ~20
// instructions, and the small kernels did three or four per element, most
// of their arithmetic. Element e of a chunk is row r = e / K, column e − r·K,
// at shared-memory slot r·kp + e − r·K (rows padded to kp).
__device__ __forceinline__ int small_div(int e, float kinv) { return __float2int_rz(((float)e + 0.5f) * kinv); }

// row_div is a / b for the small kernels' per-row gate and bias indices, in
// 32-bit arithmetic where a fits (a 64-bit division is a long software routine).
__device__ __forceinline__ long long row_div(long long a, long long b) {
	return a <= 0xffffffffLL && b <= 0xffffffffLL ? (long long)((unsigned)a / (unsigned)b) : a / b;
}

// small_smem is the *_small kernels' shared memory, sized at launch for the
// rows' actual K (native/cuda/launch.go's smallShared; static arrays for
// SMALL_K = 32 held 36 KB per block in softmax_backward_small and capped the
// card at six blocks, 37% occupancy, for K = 10). A kernel given less than
// its layout needs traps (dyn_smem).
extern __shared__ __align__(16) unsigned char small_smem[];

__device__ __forceinline__ unsigned dyn_smem() {
	unsigned r;
	asm volatile("mov.u32 %0, %%dynamic_smem_size;" : "=r"(r));
	return r;
}

// small_need traps when the block's dynamic shared memory ends before end.
__device__ __forceinline__ void small_need(const void *end) {
	if ((unsigned)((const unsigned char *)end - small_smem) > dyn_smem()) {
		__trap();
	}
}

#define CHUNK_LOOP(r0, rows, cr) \
	for (long long r0 = (long long)blockIdx.x * (cr); r0 < (rows); r0 += (long long)gridDim.x * (cr))

// softmax_small_of: softmax for K ≤ SMALL_K, one thread per row (see
// above); the same float32 and float64 operations as softmax, but the sum
// runs over k in order, as on the CPU (FAST: exp and the sum in float32 with
// CUDA's __expf, the division by tau a multiplication by 1/tau and the
// normalisation a float32 product, softmax_small_f32; TestFastSoftmax bounds
// it). bias and noise may be null; with mix,
// also the state update mix = g·prev + (1−g)·out (SoftmaxMix). out may alias
// logits (a block reads its whole chunk before it writes any of it).
template <bool FAST>
__device__ __forceinline__ void softmax_small_of(float *out, const float *logits, const float *noise, double tau,
                                                 long long N, long long K, const float *bias, long long Db,
                                                 float *mix, const float *prev, const float *z, long long D,
                                                 long long Kz, long long skip, unsigned long long nseed,
                                                 long long noff) {
	if (K > SMALL_K) {
		return; // the host never launches it so (native/cuda/ops.go)
	}
	float t = (float)tau, tinv = 1.0f / t; // FAST multiplies by tinv (one rounding more than v / t)
	int k32 = (int)K, kp = SMALL_PAD(k32);
	// Layout (smallShared, forward): sinv, sh (SMALL_ROWS rows of kp), boff, sgate.
	double *sinv = (double *)small_smem;
	float *sh = (float *)(sinv + SMALL_ROWS);
	int *boff = (int *)(sh + SMALL_ROWS * kp); // bias offset per row
	float *sgate = (float *)(boff + SMALL_ROWS); // gate per row (mix)
	small_need(sgate + SMALL_ROWS);
	float kinv = 1.0f / (float)k32;
	long long bk = bias ? Db / K : 1, dk = mix ? D / K : 1;
	CHUNK_LOOP(r0, N, SMALL_ROWS) {
		int rows = (int)(N - r0 < SMALL_ROWS ? N - r0 : SMALL_ROWS);
		int cnt = rows * k32;
		long long base = r0 * K;
		if ((int)threadIdx.x < rows) {
			long long r = r0 + threadIdx.x;
			if (bias) {
				boff[threadIdx.x] = (int)((r - row_div(r, bk) * bk) * K);
			}
			if (mix) {
				sgate[threadIdx.x] = z[row_div(r, dk) * Kz + skip];
			}
		}
		__syncthreads();
		BATCH_LOOP(e0, cnt) {
			float lv[SMALL_BATCH], nv[SMALL_BATCH];
			BATCH_EACH(u, e, e0, cnt) {
				lv[u] = logits[base + e];
				nv[u] = noise ? noise[base + e]
				              : noff >= 0 ? gumbel32(nseed, (unsigned long long)(noff + base + e)) : 0.f;
			}
			BATCH_EACH(u, e, e0, cnt) {
				float v = lv[u];
				int r = small_div(e, kinv);
				if (bias) {
					v += bias[boff[r] + e - r * k32];
				}
				if (noise || noff >= 0) {
					v += nv[u];
				}
				v = FAST ? v * tinv : v / t;
				sh[r * kp + e - r * k32] = v;
			}
		}
		__syncthreads();
		if ((int)threadIdx.x < rows) {
			float *o = sh + threadIdx.x * kp;
			float maxv = __int_as_float(0xff800000); // -Inf
			for (int k = 0; k < k32; k++) {
				maxv = fmaxf(maxv, o[k]);
			}
			if (FAST) {
				float sum = 0;
				for (int k = 0; k < k32; k++) {
					float e = __expf(o[k] - maxv);
					o[k] = e;
					sum += e;
				}
				((float *)sinv)[threadIdx.x] = 1 / sum; // FAST reads sinv's storage as floats
			} else {
				double sum = 0;
				for (int k = 0; k < k32; k++) {
					double e = exp((double)(o[k] - maxv));
					o[k] = (float)e;
					sum += e;
				}
				sinv[threadIdx.x] = 1 / sum;
			}
		}
		__syncthreads();
		BATCH_LOOP(e0, cnt) {
			float pv[SMALL_BATCH];
			BATCH_EACH(u, e, e0, cnt) {
				pv[u] = mix ? prev[base + e] : 0.f;
			}
			BATCH_EACH(u, e, e0, cnt) {
				int r = small_div(e, kinv);
				float h = FAST ? sh[r * kp + e - r * k32] * ((const float *)sinv)[r]
				               : (float)((double)sh[r * kp + e - r * k32] * sinv[r]);
				out[base + e] = h;
				if (mix) {
					float g = sgate[r];
					mix[base + e] = g * pv[u] + (1 - g) * h;
				}
			}
		}
		__syncthreads(); // the shared arrays are reused by the next chunk
	}
}

// softmax_small: softmax_small_of in the CPU's arithmetic (float64 exp and
// sum).
extern "C" __global__ void softmax_small(float *out, const float *logits, const float *noise, double tau,
                                         long long N, long long K, const float *bias, long long Db, float *mix,
                                         const float *prev, const float *z, long long D, long long Kz,
                                         long long skip, unsigned long long nseed, long long noff) {
	softmax_small_of<false>(out, logits, noise, tau, N, K, bias, Db, mix, prev, z, D, Kz, skip, nseed, noff);
}

// softmax_small_f32: softmax_small_of with exp and the sum in float32
// (__expf; SetFastSoftmax, for the search): the softmax kernels are bound by
// their arithmetic, and the float64 exp is most of it (+2.5% search speed as
// a variant, docs/CUDA.md).
extern "C" __global__ void softmax_small_f32(float *out, const float *logits, const float *noise, double tau,
                                             long long N, long long K, const float *bias, long long Db,
                                             float *mix, const float *prev, const float *z, long long D,
                                             long long Kz, long long skip, unsigned long long nseed,
                                             long long noff) {
	softmax_small_of<true>(out, logits, noise, tau, N, K, bias, Db, mix, prev, z, D, Kz, skip, nseed, noff);
}

// bacc: softmax_backward_small's sums, float64 as the CPU's; float with
// -DSMALL_BWD_F32, a speed experiment only (native/ptx_variants.sh).
#ifdef SMALL_BWD_F32
typedef float bacc;
#else
typedef double bacc;
#endif

// softmax_backward_small: softmax_backward for K ≤ SMALL_K, one thread per
// row for the dot product Σ_k out·dh (in order, float64, as the CPU), then
// dlogits += out⊙(dh − dot)/tau elementwise with coalesced accesses; acc's
// bits as softmax_backward's, 4 for dz. With z (SoftmaxMix's backward),
// dh = (1−g)·dout and dprev += g·dout; where a gate row spans at most
// SMALL_ROWS softmax rows, blocks take chunks of whole gate rows and also
// write dz[n,skip] += Σ dout·(prev − out) over the gate row (float64: per
// softmax row, then over the rows in order; a clear bit 4 overwrites dz's
// whole row); else (or dz null) the host computes dz with skip_mix_backward.
extern "C" __global__ void softmax_backward_small(float *dlogits, const float *dout, const float *out, double tau,
                                                  long long N, long long K, long long acc, float *dprev, float *dz,
                                                  const float *prev, const float *z, long long D, long long Kz,
                                                  long long skip) {
	if (K > SMALL_K) {
		return; // the host never launches it so (native/cuda/ops.go)
	}
	bool al = acc & 2, ap = acc & 1, az = acc & 4;
	bacc inv = 1 / (bacc)(float)tau;
	int k32 = (int)K, kp = SMALL_PAD(k32);
	// Layout (smallShared, backward; bacc at most 8 bytes): sdot, spart, sp and sg
	// (SMALL_ROWS rows of kp each), sgate.
	bacc *sdot = (bacc *)small_smem;
	bacc *spart = sdot + SMALL_ROWS; // per row Σ dout·(prev − out), for dz
	float *sp = (float *)(spart + SMALL_ROWS);
	float *sg = sp + SMALL_ROWS * kp;
	float *sgate = sg + SMALL_ROWS * kp;
	small_need(sgate + SMALL_ROWS);
	float kinv = 1.0f / (float)k32;
	long long rpg = z ? D / K : 1;
	bool zin = z && dz && rpg <= SMALL_ROWS;
	int cr = zin ? (int)(SMALL_ROWS / rpg * rpg) : SMALL_ROWS;
	CHUNK_LOOP(r0, N, cr) {
		int rows = (int)(N - r0 < cr ? N - r0 : cr);
		int cnt = rows * k32;
		long long base = r0 * K;
		if (z && (int)threadIdx.x < rows) {
			sgate[threadIdx.x] = z[row_div(r0 + threadIdx.x, rpg) * Kz + skip];
		}
		__syncthreads();
		BATCH_LOOP(e0, cnt) {
			float ov[SMALL_BATCH], dv[SMALL_BATCH], pv[SMALL_BATCH];
			BATCH_EACH(u, e, e0, cnt) {
				ov[u] = out[base + e];
				dv[u] = dout[base + e];
				pv[u] = z && dprev && ap ? dprev[base + e] : 0.f;
			}
			BATCH_EACH(u, e, e0, cnt) {
				int r = small_div(e, kinv), j = r * kp + e - r * k32;
				sp[j] = ov[u];
				float v = dv[u];
				if (z) {
					float g = sgate[r];
					if (dprev) {
						dprev[base + e] = ap ? pv[u] + g * v : g * v;
					}
					v = (1 - g) * v;
				}
				sg[j] = v;
			}
		}
		__syncthreads();
		if ((int)threadIdx.x < rows) {
			const float *p = sp + threadIdx.x * kp, *g = sg + threadIdx.x * kp;
			bacc dot = 0;
			for (int k = 0; k < k32; k++) {
				dot += (bacc)p[k] * (bacc)g[k];
			}
			sdot[threadIdx.x] = dot;
			if (zin) {
				long long rb = base + (long long)threadIdx.x * K;
				bacc s = 0;
#pragma unroll 4
				for (int k = 0; k < k32; k++) {
					s += (bacc)dout[rb + k] * ((bacc)prev[rb + k] - (bacc)p[k]);
				}
				spart[threadIdx.x] = s;
			}
		}
		__syncthreads();
		if (dlogits) {
			BATCH_LOOP(e0, cnt) {
				float lv[SMALL_BATCH];
				BATCH_EACH(u, e, e0, cnt) {
					lv[u] = al ? dlogits[base + e] : 0.f;
				}
				BATCH_EACH(u, e, e0, cnt) {
					int r = small_div(e, kinv), j = r * kp + e - r * k32;
					float v = (float)((bacc)sp[j] * ((bacc)sg[j] - sdot[r]) * inv);
					dlogits[base + e] = al ? lv[u] + v : v;
				}
			}
		}
		if (zin) { // rows is a whole number of gate rows (N = gates·rpg)
			int gates = rows / (int)rpg;
			for (int q = threadIdx.x; q < gates; q += SMALL_ROWS) {
				bacc s = 0;
				for (int i = 0; i < (int)rpg; i++) {
					s += spart[q * (int)rpg + i];
				}
				float *dzr = dz + (r0 / rpg + q) * Kz;
				if (!az) {
					for (long long k = 0; k < Kz; k++) {
						if (k != skip) {
							dzr[k] = 0;
						}
					}
				}
				dzr[skip] = az ? dzr[skip] + (float)s : (float)s;
			}
		}
		__syncthreads(); // the shared arrays are reused by the next chunk
	}
}

// attention_softmax_backward: in place on each row of scratch (rows of S),
// which holds datt = dout·vᵀ: scratch = att⊙(datt − Σ att·datt), the sum in
// float64 of float32 products (as the CPU's attention backward).
extern "C" __global__ void attention_softmax_backward(float *scratch, const float *att, long long rows, long long S) {
	int lane = threadIdx.x % 32;
	WARP_LOOP(r, rows) {
		const float *a = att + r * S;
		float *d = scratch + r * S;
		double dot = 0;
		for (long long k = lane; k < S; k += 32) {
			dot += (double)(a[k] * d[k]);
		}
		float dotf = (float)warp_sum(dot);
		for (long long k = lane; k < S; k += 32) {
			d[k] = a[k] * (d[k] - dotf);
		}
	}
}

// skip_mix_backward_z: dz[n,skip] += Σ_d dout·(prev − hat), in float64.
extern "C" __global__ void skip_mix_backward_z(float *dz, const float *dout, const float *prev, const float *hat,
                                               long long N, long long D, long long K, long long skip) {
	int lane = threadIdx.x % 32;
	WARP_LOOP(n, N) {
		double s = 0;
		for (long long i = lane; i < D; i += 32) {
			long long j = n * D + i;
			s += (double)dout[j] * ((double)prev[j] - (double)hat[j]);
		}
		s = warp_sum(s);
		if (lane == 0) {
			dz[n * K + skip] += (float)s;
		}
	}
}

// skip_mix_backward: skip_mix_backward_inputs and skip_mix_backward_z in one
// pass, one warp per row: dprev += g·dout, dhat += (1−g)·dout (either may be
// null), dz[n,skip] += Σ_d dout·(prev − hat) in float64 (dz may be null);
// dout is read once. The same operations in the same order as the two
// kernels, so the results are identical to theirs. acc's bits 1, 2, 4
// (model.SkipMixAcc: prev, hat, z) say which outputs accumulate; a clear bit
// overwrites that output (dz: its whole row, zero outside column skip).
extern "C" __global__ void skip_mix_backward(float *dprev, float *dhat, float *dz, const float *dout,
                                             const float *prev, const float *hat, const float *z, long long N,
                                             long long D, long long K, long long skip, long long acc) {
	bool ap = acc & 1, ah = acc & 2, az = acc & 4;
	int lane = threadIdx.x % 32;
	WARP_LOOP(n, N) {
		float g = z[n * K + skip];
		double s = 0;
		for (long long i = lane; i < D; i += 32) {
			long long j = n * D + i;
			float v = dout[j];
			if (dprev) {
				dprev[j] = ap ? dprev[j] + g * v : g * v;
			}
			if (dhat) {
				dhat[j] = ah ? dhat[j] + (1 - g) * v : (1 - g) * v;
			}
			if (dz) {
				s += (double)v * ((double)prev[j] - (double)hat[j]);
			}
		}
		if (dz) { // the same for every lane, so the whole warp shuffles
			s = warp_sum(s);
			if (!az) {
				for (long long k = lane; k < K; k += 32) {
					if (k != skip) {
						dz[n * K + k] = 0;
					}
				}
			}
			if (lane == 0) {
				dz[n * K + skip] = az ? dz[n * K + skip] + (float)s : (float)s;
			}
		}
	}
}

// argmax_one_hot: out[n,:] = onehot(argmax_k logits[n,k]), first max wins
// (one thread per row, scanning in order as the CPU does).
extern "C" __global__ void argmax_one_hot(float *out, const float *logits, long long N, long long K) {
	THREAD_LOOP(n, N) {
		const float *l = logits + n * K;
		long long best = 0;
		for (long long k = 1; k < K; k++) {
			if (l[k] > l[best]) {
				best = k;
			}
		}
		float *o = out + n * K;
		for (long long k = 0; k < K; k++) {
			o[k] = k == best ? 1.0f : 0.0f;
		}
	}
}

// nll_backward: dp[n,y[n]] += −dout[0]·scale/p[n,y[n]] where p > 1e-8.
extern "C" __global__ void nll_backward(float *dp, const float *dout, const float *p, const int *y, long long N,
                                        long long V, double scale, int *err, long long code) {
	double g = -(double)dout[0] * scale;
	THREAD_LOOP(n, N) {
		int t = y[n];
		if (t < 0 || t >= V) {
			flag_error(err, code);
			continue;
		}
		long long i = n * V + t;
		double pv = (double)p[i];
		if (pv > 1e-8) {
			dp[i] += (float)(g / pv);
		}
	}
}

// seq_score: loglik[r] = Σ_l log(max(p[r,l,y],1e-8)) and exact[r] = 1 when
// argmax_v p[r,l,:] == y[r,l] at every l (first max wins), else 0.
// p (R,L,V), y (R,L) int. One thread per sequence.
extern "C" __global__ void seq_score(float *loglik, float *exact, const float *p, const int *y, long long R,
                                     long long L, long long V, int *err, long long code) {
	THREAD_LOOP(r, R) {
		double s = 0;
		float ok = 1;
		for (long long l = 0; l < L; l++) {
			const float *row = p + (r * L + l) * V;
			int t = y[r * L + l];
			if (t < 0 || t >= V) {
				flag_error(err, code);
				ok = 0;
				continue;
			}
			double pt = (double)row[t];
			s += log(pt > 1e-8 ? pt : 1e-8);
			long long best = 0;
			for (long long v = 1; v < V; v++) {
				if (row[v] > row[best]) {
					best = v;
				}
			}
			if (best != t) {
				ok = 0;
			}
		}
		loglik[r] = (float)s;
		exact[r] = ok;
	}
}

// reuse_reg_backward: dq[n,d] += dout[0]·exp(S[d])/(1−q[n,d]) where
// q < 1−1e-6; S (D) float64 from reuse_sums (reduce.cu).
extern "C" __global__ void reuse_reg_backward(float *dq, const float *dout, const float *q, const double *S,
                                              long long N, long long D) {
	double g = (double)dout[0];
	THREAD_LOOP(i, N * D) {
		double qv = (double)q[i];
		if (qv < 0.999999) {
			dq[i] += (float)(g * exp(S[i % D]) / (1 - qv));
		}
	}
}
