// The CPU backend's matrix multiply: a cache-blocked Gemm with packed panels
// and a register-tiled micro-kernel, parallel over independent rows (or
// columns) of C.
//
// Layout of the computation (the usual BLIS/GotoBLAS loop nest):
//
//	for each block of gemmNC columns of C            (jc)
//	  for each block of gemmKC along K               (pc)
//	    pack op(B)[pc:pc+kc, jc:jc+nc] into strips of gemmNR columns, k-major
//	    for each tile of gemmMR rows of C, in parallel
//	      pack op(A)[rows, pc:pc+kc] k-major
//	      for each strip: micro-kernel → gemmMR×gemmNR sums, added to C
//
// Packing turns every transpose combination into the same unit-stride
// micro-kernel. Partial tiles are packed with zero padding and go through the
// same kernel, so every element of C is computed by the same sequence of
// float32 operations wherever its tile falls: the result is bit-identical
// for any number of workers.
//
// The tile is 2×3: six float32 accumulators plus five operands fit the 15
// usable SSE registers of Go's amd64 ABI without spills; wider tiles (4×4,
// 3×4, 2×6, 2×4) measured slower on this machine because the compiler spills.

package model

const (
	gemmMR = 2   // rows of the register tile
	gemmNR = 3   // columns of the register tile
	gemmKC = 256 // depth of one packed block
	gemmNC = 512 // columns of one packed block of op(B)

	// gemmSerial is the number of multiply-adds below which Gemm does not
	// wake the workers.
	gemmSerial = 1 << 15
)

// gemmJob holds one Gemm call's operands and the current block; its run
// method computes row tiles [lo, hi) (or column strips when byCols).
type gemmJob struct {
	c, a, b        []float32
	M, N, K        int
	transA, transB bool
	alpha, beta    float32

	pc, kc int  // current block along K
	jc, nc int  // current block of columns
	first  bool // first block along K: apply beta
	byCols bool // split the parallel loop over strips instead of tiles

	bpack []float32   // packed op(B) block, strips of kc×gemmNR
	apack [][]float32 // per-worker packed op(A) tile, kc×gemmMR
}

// gemmPackJob packs the strips [lo, hi) of the current op(B) block.
type gemmPackJob struct{ g *gemmJob }

func (j *gemmPackJob) run(_, lo, hi int) {
	for s := lo; s < hi; s++ {
		j.g.packB(s)
	}
}

// packB packs strip s (columns jc+s·NR … +NR) of op(B)[pc:pc+kc, :] into
// bpack[s·kc·NR:], element (p, jj) at p·NR+jj; columns past the block are 0.
// Both layouts read B along its rows (unit stride).
func (g *gemmJob) packB(s int) {
	kc := g.kc
	dst := g.bpack[s*kc*gemmNR : (s+1)*kc*gemmNR]
	j0 := g.jc + s*gemmNR
	nr := min(gemmNR, g.jc+g.nc-j0)
	if nr < gemmNR {
		clear(dst)
	}
	if g.transB { // B is (N,K): column j of op(B) is row j of B
		for jj := range nr {
			src := g.b[(j0+jj)*g.K+g.pc:][:kc]
			for p, v := range src {
				dst[p*gemmNR+jj] = v
			}
		}
		return
	}
	for p := range kc { // B is (K,N): the strip is nr adjacent elements of row pc+p
		src := g.b[(g.pc+p)*g.N+j0:][:nr]
		d := dst[p*gemmNR:][:nr]
		for jj, v := range src {
			d[jj] = v
		}
	}
}

// packA packs rows i0 … i0+MR of op(A)[:, pc:pc+kc] into dst, element
// (p, ii) at p·MR+ii; rows past M are 0. Both layouts read A along its rows.
func (g *gemmJob) packA(dst []float32, i0 int) {
	kc := g.kc
	dst = dst[:kc*gemmMR]
	mr := min(gemmMR, g.M-i0)
	if mr < gemmMR {
		clear(dst)
	}
	if g.transA { // A is (K,M): the tile is mr adjacent elements of row pc+p
		for p := range kc {
			src := g.a[(g.pc+p)*g.M+i0:][:mr]
			d := dst[p*gemmMR:][:mr]
			for ii, v := range src {
				d[ii] = v
			}
		}
		return
	}
	for ii := range mr { // A is (M,K): row i0+ii of A
		src := g.a[(i0+ii)*g.K+g.pc:][:kc]
		for p, v := range src {
			dst[p*gemmMR+ii] = v
		}
	}
}

// run computes the row tiles [lo, hi) of the current block, or the column
// strips [lo, hi) of every row tile when byCols.
func (g *gemmJob) run(w, lo, hi int) {
	tiles := (g.M + gemmMR - 1) / gemmMR
	strips := (g.nc + gemmNR - 1) / gemmNR
	t0, t1, s0, s1 := lo, hi, 0, strips
	if g.byCols {
		t0, t1, s0, s1 = 0, tiles, lo, hi
	}
	ap := g.apack[w][:g.kc*gemmMR]
	var acc [gemmMR * gemmNR]float32
	for t := t0; t < t1; t++ {
		i0 := t * gemmMR
		g.packA(ap, i0)
		mr := min(gemmMR, g.M-i0)
		for s := s0; s < s1; s++ {
			gemmKernel(g.kc, ap, g.bpack[s*g.kc*gemmNR:(s+1)*g.kc*gemmNR], &acc)
			j0 := g.jc + s*gemmNR
			nr := min(gemmNR, g.jc+g.nc-j0)
			for ii := range mr {
				row := g.c[(i0+ii)*g.N+j0 : (i0+ii)*g.N+j0+nr]
				g.store(row, acc[ii*gemmNR:ii*gemmNR+nr])
			}
		}
	}
}

// store adds one tile row of sums into C: C = alpha·sum + beta·C for the
// first block along K (beta = 0 overwrites, ignoring NaN in C), C += alpha·sum
// for later blocks.
func (g *gemmJob) store(row, sum []float32) {
	sum = sum[:len(row)]
	alpha, beta := g.alpha, g.beta
	switch {
	case !g.first || beta == 1:
		for j, s := range sum {
			row[j] += alpha * s
		}
	case beta == 0:
		for j, s := range sum {
			row[j] = alpha * s
		}
	default:
		for j, s := range sum {
			row[j] = alpha*s + beta*row[j]
		}
	}
}

// gemmKernel is the micro-kernel: acc[i·NR+j] = Σ_p ap[p·MR+i]·bp[p·NR+j]
// over p < kc, accumulated in float32 in increasing p. Of the loop shapes
// tried (indexing by p, advancing sub-slices, one or two induction
// variables), this one ran fastest: about 11 GFLOP/s on one core here.
func gemmKernel(kc int, ap, bp []float32, acc *[gemmMR * gemmNR]float32) {
	var c00, c01, c02, c10, c11, c12 float32
	ap = ap[:kc*gemmMR]
	bp = bp[:kc*gemmNR]
	j := 0
	for i := 1; i < len(ap); i += gemmMR {
		if j+2 >= len(bp) {
			break
		}
		a0, a1 := ap[i-1], ap[i]
		b0, b1, b2 := bp[j], bp[j+1], bp[j+2]
		j += gemmNR
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
	}
	*acc = [gemmMR * gemmNR]float32{c00, c01, c02, c10, c11, c12}
}

// Gemm: C = alpha·op(A)·op(B) + beta·C. See Backend.Gemm.
func (c *CPU) Gemm(ct, at, bt *Tensor, transA, transB bool, M, N, K int, alpha, beta float32) {
	if M < 0 || N < 0 || K < 0 {
		panic("model: Gemm: negative dimension")
	}
	cs := f32(ct, M*N, "model: Gemm: C shorter than M·N")
	as := f32(at, M*K, "model: Gemm: A shorter than M·K")
	bs := f32(bt, K*N, "model: Gemm: B shorter than K·N")
	if M == 0 || N == 0 {
		return
	}
	if K == 0 { // empty product: C = beta·C
		if beta == 0 {
			clear(cs)
		} else if beta != 1 {
			for i := range cs {
				cs[i] *= beta
			}
		}
		return
	}

	g := &c.gemm
	g.c, g.a, g.b = cs, as, bs
	g.M, g.N, g.K = M, N, K
	g.transA, g.transB = transA, transB
	g.alpha, g.beta = alpha, beta
	workers := c.pool.workers
	if len(g.apack) < workers {
		g.apack = make([][]float32, workers)
	}
	for w := range workers {
		if len(g.apack[w]) < gemmKC*gemmMR {
			g.apack[w] = make([]float32, gemmKC*gemmMR)
		}
	}
	serial := M*N*K < gemmSerial
	tiles := (M + gemmMR - 1) / gemmMR

	for jc := 0; jc < N; jc += gemmNC {
		g.jc, g.nc = jc, min(gemmNC, N-jc)
		strips := (g.nc + gemmNR - 1) / gemmNR
		for pc := 0; pc < K; pc += gemmKC {
			g.pc, g.kc, g.first = pc, min(gemmKC, K-pc), pc == 0
			need := strips * g.kc * gemmNR
			if len(g.bpack) < need {
				g.bpack = make([]float32, max(need, gemmKC*gemmNC))
			}
			if serial {
				c.gemmPack.run(0, 0, strips)
				g.byCols = false
				g.run(0, 0, tiles)
				continue
			}
			c.pool.parallelFor(strips, 8, &c.gemmPack)
			// Few row tiles (a skinny C): split the columns instead.
			g.byCols = tiles < 4*workers && strips > tiles
			if g.byCols {
				c.pool.parallelFor(strips, 1, g)
			} else {
				c.pool.parallelFor(tiles, 1, g)
			}
		}
	}
	g.c, g.a, g.b = nil, nil, nil // do not keep the caller's memory alive
}
