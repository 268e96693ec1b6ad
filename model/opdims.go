// Dimension checks of the op list, shared by every Backend so that the CPU
// reference and the CUDA backend reject the same bad calls with the same
// messages.

package model

// CheckDims panics with msg when any dimension is negative.
func CheckDims(msg string, ds ...int) {
	for _, d := range ds {
		if d < 0 {
			panic(msg)
		}
	}
}

// AttentionDims checks Attention's dimensions (NH > 0 dividing C) and
// returns the lengths of qkv (B,S,3C), att (B,NH,S,S) and out (B,S,C).
func AttentionDims(msg string, B, S, C, NH int) (nqkv, natt, nout int) {
	if B < 0 || S < 0 || C < 0 || NH <= 0 || C%NH != 0 {
		panic(msg)
	}
	return B * S * 3 * C, B * NH * S * S, B * S * C
}

// PoolPairsDims checks PoolPairs' dimensions and returns the output length:
// B·m·C for leave-one-out pooling (m ≥ 2), B·C for the mean (m ≥ 1).
func PoolPairsDims(B, m, C int, loo bool) int {
	CheckDims("model: PoolPairs: negative dimension", B, m, C)
	if loo {
		if m < 2 {
			panic("model: PoolPairs: leave-one-out needs m >= 2")
		}
		return B * m * C
	}
	if m < 1 {
		panic("model: PoolPairs: mean needs m >= 1")
	}
	return B * C
}
