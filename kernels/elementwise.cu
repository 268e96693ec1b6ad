// kernels/elementwise.cu: the CUDA backend's one-thread-per-element ops
// (native/cuda). Each kernel mirrors the method of the same name in
// model/cpu.go, with the same operation order and precision, so that results
// agree with the CPU reference to rounding (and mostly bit for bit: the PTX is
// built with -fmad=false, as Go on amd64 does not fuse multiply-add).
//
// Calling convention (native/cuda/launch.go): every parameter is 8 bytes wide:
// pointers, long long for sizes and indices, double for float scalars (a
// float32 converts to double and back exactly), unsigned long long for seeds.
// Every kernel runs a grid-stride loop, so any grid size is correct.
//
// Index errors (a token or class outside its range) cannot panic on the
// device: the kernel skips the element and records its op code in *err with
// atomicCAS; Backend.Sync reports it.

#define LOOP(i, n)                                                                \
	for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
	     i += (long long)gridDim.x * blockDim.x)

// The memory-bound kernels of the search's hot loop (axpy, add, add_rows,
// gelu and its backward, skip_mix) take UNROLL elements per thread per pass,
// i, i + stride, …, and load all of them before using any: with one element
// per thread the loads in flight leave an H200 near 1.8 TB/s of its 4.8
// (native bench --profile: a 26M-element GELU took 115 µs). Launched with
// Backend.each4 (a quarter of each's blocks); any grid is still correct, and
// every element gets the same arithmetic as before, so results are unchanged
// bit for bit. IN4(i, u, s, n) is the u-th element's index and whether it is
// in range.
#define UNROLL 4
#define LOOP4(i, s, n)                                                                         \
	for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x,                       \
	               s = (long long)gridDim.x * blockDim.x;                                      \
	     i < (n); i += UNROLL * s)
#define FOR_U _Pragma("unroll") for (int u = 0; u < UNROLL; u++)

__device__ __forceinline__ void flag_error(int *err, long long code) {
	atomicCAS(err, 0, (int)code);
}

// axpy: y += alpha·x.
extern "C" __global__ void axpy(float *y, const float *x, double alpha, long long n) {
	float a = (float)alpha;
	LOOP4(i, s, n) {
		float xv[UNROLL], yv[UNROLL];
		FOR_U {
			long long j = i + u * s;
			xv[u] = j < n ? x[j] : 0.0f;
			yv[u] = j < n ? y[j] : 0.0f;
		}
		FOR_U {
			long long j = i + u * s;
			if (j < n) {
				y[j] = yv[u] + a * xv[u];
			}
		}
	}
}

// scale: t *= alpha.
extern "C" __global__ void scale(float *t, double alpha, long long n) {
	float a = (float)alpha;
	LOOP(i, n) { t[i] *= a; }
}

// add: out = a + b (out may alias a or b).
extern "C" __global__ void add(float *out, const float *a, const float *b, long long n) {
	LOOP4(i, s, n) {
		float av[UNROLL], bv[UNROLL];
		FOR_U {
			long long j = i + u * s;
			av[u] = j < n ? a[j] : 0.0f;
			bv[u] = j < n ? b[j] : 0.0f;
		}
		FOR_U {
			long long j = i + u * s;
			if (j < n) {
				out[j] = av[u] + bv[u];
			}
		}
	}
}

// add_rows: out[n,c] = inp[n,c] + row[c]; out (N,C) may alias inp.
// The column index j % C in I: 32-bit arithmetic when the sizes fit (a 64-bit
// remainder per element made this pass compute-bound).
template <typename I>
__device__ __forceinline__ void add_rows_body(float *out, const float *inp, const float *row, long long n, I C) {
	LOOP4(i, s, n) {
		float v[UNROLL], r[UNROLL];
		FOR_U {
			long long j = i + u * s;
			v[u] = j < n ? inp[j] : 0.0f;
			r[u] = j < n ? row[(I)j % C] : 0.0f;
		}
		FOR_U {
			long long j = i + u * s;
			if (j < n) {
				out[j] = v[u] + r[u];
			}
		}
	}
}

extern "C" __global__ void add_rows(float *out, const float *inp, const float *row, long long N, long long C) {
	long long n = N * C;
	if (n < 0xffffffffLL) {
		add_rows_body<unsigned>(out, inp, row, n, (unsigned)C);
	} else {
		add_rows_body<long long>(out, inp, row, n, C);
	}
}

// The two GELU arithmetics: gelu64 is the CPU's (float64 erf and exp, as
// PyTorch's nn.GELU()), gelu32 is float32 with CUDA's erff and the fast
// __expf, for Backend.SetFastGELU (a few float32 ulps from gelu64, far less
// work per element). f is GELU(x) = x·Φ(x); df is d·GELU'(x) = d·(Φ(x) +
// x·φ(x)); sum is the type in which bias_gelu_backward_groups sums a
// column's d down its group (float64 as the CPU; float32 with gelu32).
struct gelu64 {
	typedef double sum;
	__device__ static float f(float v) {
		const double sqrt2 = 1.4142135623730951; // math.Sqrt2
		double x = (double)v;
		return (float)(0.5 * x * (1 + erf(x * sqrt2 / 2)));
	}
	__device__ static float df(float v, float d) {
		const double sqrt2 = 1.4142135623730951;   // math.Sqrt2
		const double sqrt2pi = 2.5066282746310002; // math.Sqrt(2*math.Pi)
		double x = (double)v;
		double cdf = 0.5 * (1 + erf(x * sqrt2 / 2));
		double pdf = exp(-0.5 * x * x) / sqrt2pi;
		return (float)((double)d * (cdf + x * pdf));
	}
};

struct gelu32 {
	typedef float sum;
	__device__ static float f(float x) {
		const float rsqrt2 = 0.707106781186547524f; // 1/√2
		return 0.5f * x * (1.0f + erff(x * rsqrt2));
	}
	__device__ static float df(float x, float d) {
		const float rsqrt2 = 0.707106781186547524f;   // 1/√2
		const float rsqrt2pi = 0.398942280401432678f; // 1/√(2π)
		float cdf = 0.5f * (1.0f + erff(x * rsqrt2));
		float pdf = __expf(-0.5f * x * x) * rsqrt2pi; // ex2.approx: 2 ulp + 1.16·|arg| ulp, arg ≤ 0
		return d * (cdf + x * pdf);
	}
};

// gelu_forward: out = G::f(inp).
template <typename G>
__device__ __forceinline__ void gelu_forward(float *out, const float *inp, long long n) {
	LOOP4(i, s, n) {
		float v[UNROLL];
		FOR_U {
			long long j = i + u * s;
			v[u] = j < n ? inp[j] : 0.0f;
		}
		FOR_U {
			long long j = i + u * s;
			if (j < n) {
				out[j] = G::f(v[u]);
			}
		}
	}
}

// gelu_backward_of: dinp += G::df(inp, dout); acc 0: dinp = … without
// reading dinp (the tape's first write).
template <typename G>
__device__ __forceinline__ void gelu_backward_of(float *dinp, const float *dout, const float *inp, long long n, long long acc) {
	LOOP4(i, s, n) {
		float xv[UNROLL], dv[UNROLL], gv[UNROLL];
		FOR_U {
			long long j = i + u * s;
			xv[u] = j < n ? inp[j] : 0.0f;
			dv[u] = j < n ? dout[j] : 0.0f;
			gv[u] = j < n && acc ? dinp[j] : 0.0f;
		}
		FOR_U {
			long long j = i + u * s;
			if (j < n) {
				float v = G::df(xv[u], dv[u]);
				dinp[j] = acc ? gv[u] + v : v;
			}
		}
	}
}

// gelu: out = x·Φ(x), in double (gelu64).
extern "C" __global__ void gelu(float *out, const float *inp, long long n) { gelu_forward<gelu64>(out, inp, n); }

// gelu_backward: dinp += dout·(Φ(x) + x·φ(x)) in double (acc 0: dinp = …).
extern "C" __global__ void gelu_backward(float *dinp, const float *dout, const float *inp, long long n, long long acc) {
	gelu_backward_of<gelu64>(dinp, dout, inp, n, acc);
}

// gelu_f32: gelu in float32 (gelu32).
extern "C" __global__ void gelu_f32(float *out, const float *inp, long long n) { gelu_forward<gelu32>(out, inp, n); }

// gelu_backward_f32: gelu_backward in float32 (gelu32).
extern "C" __global__ void gelu_backward_f32(float *dinp, const float *dout, const float *inp, long long n,
                                             long long acc) {
	gelu_backward_of<gelu32>(dinp, dout, inp, n, acc);
}

// The BiasGELU kernels work row by row: inp (N,C) with N = R·m rows, row n
// taking bias row n/m; the sum inp + bias is rounded to float32 before G, as
// AddRows (or Add) then GELU would. Blocks are 2-D (Backend.rows2D): threadIdx.x
// runs over a row's W columns (W = C/4 float4s when vec, else C), threadIdx.y
// over rows, so no element needs an index division. vec (C a multiple of 4
// and every pointer 16-byte aligned) loads and stores float4s.
#define ROWS2D(n, rows)                                                                  \
	for (long long n = (long long)blockIdx.x * blockDim.y + threadIdx.y; n < (rows); \
	     n += (long long)gridDim.x * blockDim.y)
#define COLS2D(c, W) for (long long c = threadIdx.x; c < (W); c += blockDim.x)

__device__ __forceinline__ float4 f4(float x, float y, float z, float w) {
	float4 v;
	v.x = x, v.y = y, v.z = z, v.w = w;
	return v;
}
__device__ __forceinline__ float4 ld4(const float *p, long long c) { return ((const float4 *)p)[c]; }
__device__ __forceinline__ void st4(float *p, long long c, float4 v) { ((float4 *)p)[c] = v; }

template <typename G>
__device__ __forceinline__ float4 gelu4(float4 x, float4 b) {
	return f4(G::f(x.x + b.x), G::f(x.y + b.y), G::f(x.z + b.z), G::f(x.w + b.w));
}

template <typename G>
__device__ __forceinline__ float4 dgelu4(float4 x, float4 b, float4 d) {
	return f4(G::df(x.x + b.x, d.x), G::df(x.y + b.y, d.y), G::df(x.z + b.z, d.z), G::df(x.w + b.w, d.w));
}

__device__ __forceinline__ float4 add4(float4 a, float4 b) { return f4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w); }

// group_of is n / m for 0 ≤ n < rows, m ≥ 1, in 32-bit arithmetic when
// rows fits (a 64-bit division is a long software routine, once per row of
// every thread: a fifth of bias_gelu_backward's instructions).
__device__ __forceinline__ long long group_of(long long n, long long m, long long rows) {
	return rows <= 0xffffffffLL ? (long long)((unsigned)n / (unsigned)m) : n / m;
}

// bias_gelu_of: out[n,:] = G(inp[n,:] + bias[n/m,:]).
template <typename G>
__device__ __forceinline__ void bias_gelu_of(float *out, const float *inp, const float *bias, long long R, long long m,
                                             long long C, long long vec) {
	ROWS2D(n, R * m) {
		const float *x = inp + n * C, *b = bias + group_of(n, m, R * m) * C;
		float *o = out + n * C;
		if (vec) {
			COLS2D(c, C / 4) { st4(o, c, gelu4<G>(ld4(x, c), ld4(b, c))); }
		} else {
			COLS2D(c, C) { o[c] = G::f(x[c] + b[c]); }
		}
	}
}

// bias_gelu_backward_of: dinp[n,:] += G'(inp[n,:] + bias[n/m,:])·dout[n,:]
// (acc 0: dinp = …, not read).
template <typename G>
__device__ __forceinline__ void bias_gelu_backward_of(float *dinp, const float *dout, const float *inp, const float *bias,
                                                      long long R, long long m, long long C, long long acc, long long vec) {
	ROWS2D(n, R * m) {
		const float *x = inp + n * C, *b = bias + group_of(n, m, R * m) * C, *g = dout + n * C;
		float *d = dinp + n * C;
		if (vec) {
			COLS2D(c, C / 4) {
				float4 v = dgelu4<G>(ld4(x, c), ld4(b, c), ld4(g, c));
				st4(d, c, acc ? add4(ld4(d, c), v) : v);
			}
		} else {
			COLS2D(c, C) {
				float v = G::df(x[c] + b[c], g[c]);
				d[c] = acc ? d[c] + v : v;
			}
		}
	}
}

// bias_gelu_backward_groups_of: the bias gradient too, for few rows per
// group: the 2-D rows are the R groups, each thread runs its columns down the
// group's m rows: d = G'(inp + bias[r,c])·dout; dinp += d (acc 0: dinp = d;
// null: skipped); dbias[r,c] += Σ_j d summed in G::sum (float64 as the CPU, float32 with gelu32), in row order.
template <typename G>
__device__ __forceinline__ void bias_gelu_backward_groups_of(float *dinp, float *dbias, const float *dout, const float *inp,
                                                             const float *bias, long long R, long long m, long long C,
                                                             long long acc, long long vec) {
	ROWS2D(r, R) {
		const float *b = bias + r * C;
		float *db = dbias + r * C;
		if (vec) {
			COLS2D(c, C / 4) {
				float4 bv = ld4(b, c);
				typename G::sum s0 = 0, s1 = 0, s2 = 0, s3 = 0;
				for (long long j = 0; j < m; j++) {
					long long row = (r * m + j) * C;
					float4 v = dgelu4<G>(ld4(inp + row, c), bv, ld4(dout + row, c));
					if (dinp) {
						st4(dinp + row, c, acc ? add4(ld4(dinp + row, c), v) : v);
					}
					s0 += (typename G::sum)v.x, s1 += (typename G::sum)v.y, s2 += (typename G::sum)v.z, s3 += (typename G::sum)v.w;
				}
				float4 o = ld4(db, c);
				st4(db, c, f4(o.x + (float)s0, o.y + (float)s1, o.z + (float)s2, o.w + (float)s3));
			}
		} else {
			COLS2D(c, C) {
				typename G::sum s = 0;
				for (long long j = 0; j < m; j++) {
					long long k = (r * m + j) * C + c;
					float v = G::df(inp[k] + b[c], dout[k]);
					if (dinp) {
						dinp[k] = acc ? dinp[k] + v : v;
					}
					s += (typename G::sum)v;
				}
				db[c] += (float)s;
			}
		}
	}
}

// bias_gelu: out[r,j,:] = GELU(inp[r,j,:] + bias[r,:]) in double (gelu64).
extern "C" __global__ void bias_gelu(float *out, const float *inp, const float *bias, long long R, long long m, long long C,
                                     long long vec) {
	bias_gelu_of<gelu64>(out, inp, bias, R, m, C, vec);
}

// bias_gelu_f32: bias_gelu in float32 (gelu32).
extern "C" __global__ void bias_gelu_f32(float *out, const float *inp, const float *bias, long long R, long long m,
                                         long long C, long long vec) {
	bias_gelu_of<gelu32>(out, inp, bias, R, m, C, vec);
}

// bias_gelu_backward: dinp += dout·GELU'(inp + bias) in double (acc 0: =).
extern "C" __global__ void bias_gelu_backward(float *dinp, const float *dout, const float *inp, const float *bias,
                                              long long R, long long m, long long C, long long acc, long long vec) {
	bias_gelu_backward_of<gelu64>(dinp, dout, inp, bias, R, m, C, acc, vec);
}

// bias_gelu_backward_f32: bias_gelu_backward in float32 (gelu32).
extern "C" __global__ void bias_gelu_backward_f32(float *dinp, const float *dout, const float *inp, const float *bias,
                                                  long long R, long long m, long long C, long long acc, long long vec) {
	bias_gelu_backward_of<gelu32>(dinp, dout, inp, bias, R, m, C, acc, vec);
}

// bias_gelu_backward_groups: with the bias gradient, in double (gelu64).
extern "C" __global__ void bias_gelu_backward_groups(float *dinp, float *dbias, const float *dout, const float *inp,
                                                     const float *bias, long long R, long long m, long long C,
                                                     long long acc, long long vec) {
	bias_gelu_backward_groups_of<gelu64>(dinp, dbias, dout, inp, bias, R, m, C, acc, vec);
}

// bias_gelu_backward_groups_f32: bias_gelu_backward_groups in float32 (gelu32).
extern "C" __global__ void bias_gelu_backward_groups_f32(float *dinp, float *dbias, const float *dout, const float *inp,
                                                         const float *bias, long long R, long long m, long long C,
                                                         long long acc, long long vec) {
	bias_gelu_backward_groups_of<gelu32>(dinp, dbias, dout, inp, bias, R, m, C, acc, vec);
}

// slice_rows: out[n,r,:] = inp[n,start+r,:]. out (N,R,C), inp (N,S,C).
extern "C" __global__ void slice_rows(float *out, const float *inp, long long N, long long S, long long start,
                                      long long R, long long C) {
	long long RC = R * C;
	LOOP(i, N * RC) {
		long long n = i / RC, rc = i % RC;
		out[i] = inp[(n * S + start) * C + rc];
	}
}

// slice_rows_backward: dinp[n,start+r,:] += dout[n,r,:].
extern "C" __global__ void slice_rows_backward(float *dinp, const float *dout, long long N, long long S,
                                               long long start, long long R, long long C) {
	long long RC = R * C;
	LOOP(i, N * RC) {
		long long n = i / RC, rc = i % RC;
		dinp[(n * S + start) * C + rc] += dout[i];
	}
}

// repeat_rows: out[r,j,:] = inp[r,:] for j < m. out (R,m,C), inp (R,C).
extern "C" __global__ void repeat_rows(float *out, const float *inp, long long R, long long m, long long C) {
	LOOP(i, R * m * C) {
		long long r = i / (m * C), c = i % C;
		out[i] = inp[r * C + c];
	}
}

// transpose01: out[b,a,:] = inp[a,b,:] (acc: +=). out (B,A,C), inp (A,B,C).
extern "C" __global__ void transpose01(float *out, const float *inp, long long A, long long B, long long C,
                                       long long acc) {
	LOOP(i, A * B * C) {
		long long c = i % C, a = (i / C) % A, b = i / (A * C);
		float v = inp[(a * B + b) * C + c];
		if (acc) {
			out[i] += v;
		} else {
			out[i] = v;
		}
	}
}

// pair_embed: the inductor's tokens. out (N,2L+T,C), x,y (N,L) int, val (V,C),
// pos (L,C), chn (3,C), slot (T,C). A token outside [0,V) writes NaN and
// flags code.
extern "C" __global__ void pair_embed(float *out, const int *x, const int *y, const float *val, const float *pos,
                                      const float *chn, const float *slot, long long N, long long L, long long T,
                                      long long C, long long V, int *err, long long code) {
	long long S = 2 * L + T;
	LOOP(i, N * S * C) {
		long long c = i % C, s = (i / C) % S, n = i / (S * C);
		if (s < 2 * L) {
			long long l = s < L ? s : s - L;
			int tok = s < L ? x[n * L + l] : y[n * L + l];
			if (tok < 0 || tok >= V) {
				flag_error(err, code);
				out[i] = __int_as_float(0x7fc00000);
				continue;
			}
			long long ch = s < L ? 0 : 1;
			out[i] = val[tok * C + c] + pos[l * C + c] + chn[ch * C + c];
		} else {
			long long t = s - 2 * L;
			out[i] = slot[t * C + c] + chn[2 * C + c];
		}
	}
}

// one_hot: out[n,:] = onehot(idx[n]) over K. An index outside [0,K) leaves a
// zero row and flags code.
extern "C" __global__ void one_hot(float *out, const int *idx, long long N, long long K, int *err, long long code) {
	LOOP(i, N * K) {
		long long n = i / K, k = i % K;
		int v = idx[n];
		if (v < 0 || v >= K) {
			if (k == 0) {
				flag_error(err, code);
			}
			out[i] = 0;
			continue;
		}
		out[i] = v == k ? 1.0f : 0.0f;
	}
}

// skip_mix: g = z[n,skip], out[n,:] = g·prev[n,:] + (1−g)·hat[n,:].
template <typename I>
__device__ __forceinline__ void skip_mix_body(float *out, const float *prev, const float *hat, const float *z, long long n,
                                              I D, I K, I skip) {
	LOOP4(i, s, n) {
		float g[UNROLL], p[UNROLL], h[UNROLL];
		FOR_U {
			long long j = i + u * s;
			g[u] = j < n ? z[((I)j / D) * K + skip] : 0.0f;
			p[u] = j < n ? prev[j] : 0.0f;
			h[u] = j < n ? hat[j] : 0.0f;
		}
		FOR_U {
			long long j = i + u * s;
			if (j < n) {
				out[j] = g[u] * p[u] + (1 - g[u]) * h[u];
			}
		}
	}
}

extern "C" __global__ void skip_mix(float *out, const float *prev, const float *hat, const float *z, long long N,
                                    long long D, long long K, long long skip) {
	long long n = N * D;
	if (n < 0xffffffffLL && N * K < 0xffffffffLL) {
		skip_mix_body<unsigned>(out, prev, hat, z, n, (unsigned)D, (unsigned)K, (unsigned)skip);
	} else {
		skip_mix_body<long long>(out, prev, hat, z, n, D, K, skip);
	}
}

// skip_mix_backward_inputs: dprev += g·dout, dhat += (1−g)·dout (either may
// be null). dz is reduced per row in rows.cu.
extern "C" __global__ void skip_mix_backward_inputs(float *dprev, float *dhat, const float *dout, const float *z,
                                                    long long N, long long D, long long K, long long skip) {
	LOOP(i, N * D) {
		float g = z[(i / D) * K + skip];
		float v = dout[i];
		if (dprev) {
			dprev[i] += g * v;
		}
		if (dhat) {
			dhat[i] += (1 - g) * v;
		}
	}
}

// adamw: PyTorch's AdamW per element in double, as CPU.AdamW. The host
// passes the hyperparameters already converted (decimal64) and the bias
// corrections bc1 = 1−β1^step, bc2 = 1−β2^step and decay = 1−lr·wd.
extern "C" __global__ void adamw(float *p, const float *g, float *m, float *v, long long n, double b1, double b2,
                                 double bc1, double bc2, double lr, double eps, double decay, double grad_scale) {
	float gs = (float)grad_scale;
	LOOP(i, n) {
		double gv = (double)(g[i] * gs);
		float mi = (float)(b1 * (double)m[i] + (1 - b1) * gv);
		float vi = (float)(b2 * (double)v[i] + (1 - b2) * gv * gv);
		m[i] = mi;
		v[i] = vi;
		double mhat = (double)mi / bc1, vhat = (double)vi / bc2;
		p[i] = (float)((double)p[i] * decay - lr * mhat / (sqrt(vhat) + eps));
	}
}
