// The work unit of the multi-tensor kernels (fused AdamW, Muon's batched elementwise passes): a
// contiguous range of one tensor of a pointer table. Long tensors split into many chunks and short
// ones take one, so a single launch covers any mix of sizes with evenly sized blocks of work.
#pragma once

#include <cstdint>

namespace muonrec::kernels {

// All three fields 64-bit: no padding bytes, so two chunk lists compare equal bytewise exactly when
// they are equal (the optimizers upload a table again only when its bytes change).
struct TensorChunk {
  int64_t tensor;  // index into the launch's table
  int64_t begin;
  int64_t end;
};

}  // namespace muonrec::kernels
