#include "muonrec/kernels/cpu/slice.h"

#include <algorithm>

namespace muonrec::kernels::cpu {

void split_last_forward(const float* x, float* out, int64_t rows, int64_t cols, int64_t start, int64_t width) {
  for (int64_t r = 0; r < rows; ++r) std::copy_n(x + r * cols + start, width, out + r * width);
}

void split_last_backward(const float* dout, float* dx, int64_t rows, int64_t cols, int64_t start, int64_t width) {
  std::fill(dx, dx + rows * cols, 0.0f);
  for (int64_t r = 0; r < rows; ++r) std::copy_n(dout + r * width, width, dx + r * cols + start);
}

}  // namespace muonrec::kernels::cpu
