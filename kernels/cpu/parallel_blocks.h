// Elementwise CPU loops over large tensors, split into fixed blocks that the OpenMP threads share.
// Blocks have a fixed size, so each element is computed by the same code whatever the thread count
// (the bits do not depend on it); tensors below kParallelElements stay on the calling thread, where
// waking the threads would cost more than the loop.
#pragma once

#include <algorithm>
#include <cstdint>

namespace muonrec::kernels::cpu {

constexpr int64_t kElementBlock = 1024;
constexpr int64_t kParallelElements = int64_t{1} << 15;

// Calls f(first, count) for every block [first, first + count) of [0, n), count <= kElementBlock.
template <class BlockFn>
void for_each_element_block(int64_t n, BlockFn f) {
  const int64_t blocks = (n + kElementBlock - 1) / kElementBlock;
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
  for (int64_t b = 0; b < blocks; ++b) f(b * kElementBlock, std::min(kElementBlock, n - b * kElementBlock));
}

}  // namespace muonrec::kernels::cpu
