// Deterministic warp and block reductions shared by the kernels. The xor butterfly and the fold of
// the warp results in warp order add in the same order on every run (no atomics), so results are
// reproducible bit for bit.
#pragma once

namespace muonrec::kernels::cuda {

template <typename T>
__device__ __forceinline__ T warp_sum(T value) {
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

// Every thread of the block gets the reduction of `value` over the block. `shared` holds one slot
// per warp (blockDim.x / 32, blockDim.x a multiple of 32).
template <typename T, typename Op>
__device__ T block_reduce(T value, Op op, T* shared) {
  for (int offset = 16; offset > 0; offset >>= 1) value = op(value, __shfl_xor_sync(0xffffffffu, value, offset));
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  __syncthreads();  // earlier readers of shared are done
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  value = shared[0];
  for (unsigned w = 1; w < warps; ++w) value = op(value, shared[w]);
  return value;
}

struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct SumOp {
  template <typename T>
  __device__ T operator()(T a, T b) const { return a + b; }
};

}  // namespace muonrec::kernels::cuda
