// Internal to the op layer: routes a kernel call to the CPU reference or the CUDA launcher of the
// same name (CUDA launchers take the engine stream as a trailing argument).
#pragma once

#include <cstdint>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/tensor.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/grad_clip.h"
#include "kernels/cpu/hstu_attention.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/optimizer.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/row_dot.h"
#include "kernels/cpu/slice.h"

#ifdef MUONREC_WITH_CUDA
#include "engine/cuda_check.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/grad_clip.h"
#include "kernels/cuda/hstu_attention.h"
#include "kernels/cuda/loss.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/norm.h"
#include "kernels/cuda/optimizer.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/row_dot.h"
#include "kernels/cuda/slice.h"
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
