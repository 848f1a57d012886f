// Four-element loads and stores for the bandwidth-bound multi-tensor kernels (AdamW, Muon's stack
// passes): one 16-byte access per float4 (8 bytes per 4 bf16) instead of four, so each thread keeps
// four times the bytes in flight. Gradients may sit at any float offset of a gradient arena, so
// their loads fall back to scalar accesses when unaligned. The accesses name the global space
// (the pointers come from tables, so the compiler could not tell) and skip L1: nothing here is
// read twice by a block. And the bf16 rounding these passes use.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

__device__ __forceinline__ bool aligned_to(const void* p, unsigned bytes) {
  return (reinterpret_cast<uintptr_t>(p) & (bytes - 1)) == 0;
}

// The nearest bf16 value (ties to even, as the host's f32_to_bf16_bits), kept as a float.
__device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

__device__ __forceinline__ float4 load_float4(const float* p, bool aligned16) {
  if (aligned16) return __ldcg(reinterpret_cast<const float4*>(p));
  return make_float4(__ldcg(p), __ldcg(p + 1), __ldcg(p + 2), __ldcg(p + 3));
}

// p must be 16-byte aligned.
__device__ __forceinline__ void store_float4(float* p, float4 v) { __stcg(reinterpret_cast<float4*>(p), v); }

// Four bf16 values as floats; p must be 8-byte aligned.
__device__ __forceinline__ float4 load_bf16x4(const __nv_bfloat16* p) {
  const uint2 raw = __ldcg(reinterpret_cast<const uint2*>(p));
  const __nv_bfloat162 lo = *reinterpret_cast<const __nv_bfloat162*>(&raw.x);
  const __nv_bfloat162 hi = *reinterpret_cast<const __nv_bfloat162*>(&raw.y);
  return make_float4(__low2float(lo), __high2float(lo), __low2float(hi), __high2float(hi));
}

// Rounds four floats to the nearest bf16 (ties to even) and stores them; p must be 8-byte aligned.
__device__ __forceinline__ void store_bf16x4(__nv_bfloat16* p, float4 v) {
  const __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y);
  const __nv_bfloat162 hi = __floats2bfloat162_rn(v.z, v.w);
  uint2 raw;
  raw.x = *reinterpret_cast<const uint32_t*>(&lo);
  raw.y = *reinterpret_cast<const uint32_t*>(&hi);
  __stcg(reinterpret_cast<uint2*>(p), raw);
}

}  // namespace muonrec::kernels::cuda
