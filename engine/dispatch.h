// Internal to the op layer: routes a kernel call to the CPU reference or the CUDA launcher of the
// same name (CUDA launchers take the engine stream as a trailing argument).
#pragma once

#include <cstdint>

#include "muonrec/engine/autograd.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/engine/tensor.h"
#include "muonrec/kernels/cpu/activation.h"
#include "muonrec/kernels/cpu/attention.h"
#include "muonrec/kernels/cpu/elementwise.h"
#include "muonrec/kernels/cpu/embedding.h"
#include "muonrec/kernels/cpu/grad_clip.h"
#include "muonrec/kernels/cpu/hstu_attention.h"
#include "muonrec/kernels/cpu/loss.h"
#include "muonrec/kernels/cpu/matmul.h"
#include "muonrec/kernels/cpu/norm.h"
#include "muonrec/kernels/cpu/optimizer.h"
#include "muonrec/kernels/cpu/reduce.h"
#include "muonrec/kernels/cpu/row_dot.h"
#include "muonrec/kernels/cpu/slice.h"

#ifdef MUONREC_WITH_CUDA
#include "muonrec/engine/cuda_check.h"
#include "muonrec/kernels/cuda/activation.h"
#include "muonrec/kernels/cuda/attention.h"
#include "muonrec/kernels/cuda/elementwise.h"
#include "muonrec/kernels/cuda/embedding.h"
#include "muonrec/kernels/cuda/grad_clip.h"
#include "muonrec/kernels/cuda/hstu_attention.h"
#include "muonrec/kernels/cuda/loss.h"
#include "muonrec/kernels/cuda/matmul.h"
#include "muonrec/kernels/cuda/norm.h"
#include "muonrec/kernels/cuda/optimizer.h"
#include "muonrec/kernels/cuda/reduce.h"
#include "muonrec/kernels/cuda/row_dot.h"
#include "muonrec/kernels/cuda/slice.h"
#define MUONREC_DISPATCH(device, fn, ...)                                     \
  do {                                                                        \
    if ((device) == ::muonrec::Device::CUDA)                                  \
      ::muonrec::kernels::cuda::fn(__VA_ARGS__, ::muonrec::current_stream()); \
    else                                                                      \
      ::muonrec::kernels::cpu::fn(__VA_ARGS__);                               \
  } while (0)
#else
#define MUONREC_DISPATCH(device, fn, ...) ((void)(device), ::muonrec::kernels::cpu::fn(__VA_ARGS__))
#endif

namespace muonrec::ops::detail {

inline Tensor empty_like(const Tensor& x) { return Tensor::empty(x.shape(), x.dtype(), x.device()); }

inline const float* f32(const Tensor& t) { return t.data<float>(); }
inline float* f32_mut(const Tensor& t) { return t.data<float>(); }

// Rows of a tensor viewed as a matrix over its last axis: the product of the other axes (1 for a
// vector), rows of no columns included (numel / columns would count none for [4, 0]).
inline int64_t rows_of(const Tensor& t) {
  int64_t rows = 1;
  for (int axis = 0; axis + 1 < t.rank(); ++axis) rows *= t.dim(axis);
  return rows;
}

}  // namespace muonrec::ops::detail
