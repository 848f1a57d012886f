// CUDA launchers: one dot product per (row, candidate) (contracts of kernels/cpu/row_dot.h, on
// device pointers, queued on `stream`). h is [rows, dim], c [rows, per_row, dim], out [rows, per_row].
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

// out[r, m] = <h[r], c[r, m]>
void row_dot_forward(const float* h, const float* c, float* out, int64_t rows, int64_t per_row, int64_t dim,
                     cudaStream_t stream);
// dh[r] = sum over m (increasing) of dout[r, m] c[r, m]; dc[r, m] = dout[r, m] h[r]. Either output
// may be null. No atomics: every output element has one owner thread, so results are deterministic.
void row_dot_backward(const float* h, const float* c, const float* dout, float* dh, float* dc, int64_t rows,
                      int64_t per_row, int64_t dim, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda
