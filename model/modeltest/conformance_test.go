package modeltest

import (
	"testing"

	"github.com/nli-go/nli/model"
)

// TestConformanceCPU runs the suite on the CPU backend with two workers, so
// the suite itself is exercised in CI and the parallel paths are compared
// with the single-worker reference.
func TestConformanceCPU(t *testing.T) {
	Conformance(t, model.NewCPU(2))
}
