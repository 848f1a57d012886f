#include "muonrec/kernels/cpu/row_dot.h"

#include <algorithm>

#include "muonrec/kernels/cpu/vector_math.h"

namespace muonrec::kernels::cpu {

void row_dot_forward(const float* h, const float* c, float* out, int64_t rows, int64_t per_row, int64_t dim) {
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    const float* hr = h + r * dim;
    for (int64_t m = 0; m < per_row; ++m) {
      const float* cm = c + (r * per_row + m) * dim;
      out[r * per_row + m] = dot(hr, cm, dim);
    }
  }
}

void row_dot_backward(const float* h, const float* c, const float* dout, float* dh, float* dc, int64_t rows,
                      int64_t per_row, int64_t dim) {
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    const float* hr = h + r * dim;
    const float* gr = dout + r * per_row;
    if (dh) {
      float* dhr = dh + r * dim;
      std::fill(dhr, dhr + dim, 0.0f);
      for (int64_t m = 0; m < per_row; ++m) {
        const float* cm = c + (r * per_row + m) * dim;
        for (int64_t k = 0; k < dim; ++k) dhr[k] += gr[m] * cm[k];
      }
    }
    if (dc) {
      for (int64_t m = 0; m < per_row; ++m) {
        float* dcm = dc + (r * per_row + m) * dim;
        for (int64_t k = 0; k < dim; ++k) dcm[k] = gr[m] * hr[k];
      }
    }
  }
}

}  // namespace muonrec::kernels::cpu
