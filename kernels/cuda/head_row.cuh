// The block layout shared by the attention kernels: one block per (batch, head, position), with
// blockIdx.x = (b * heads + h) * seq + t.
#pragma once

#include <cstdint>

namespace muonrec::kernels::cuda {

struct HeadRow {
  int64_t b, h, t;
};

__device__ __forceinline__ HeadRow head_row(int64_t seq, int64_t heads) {
  const int64_t row = blockIdx.x;
  const int64_t bh = row / seq;
  return HeadRow{bh / heads, bh % heads, row % seq};
}

}  // namespace muonrec::kernels::cuda
