// Counter-based random numbers (Philox-4x32-10, Salmon et al. 2011). A value is a pure function of
// (seed, counter), so the CPU and the GPU draw the same numbers for the same element, dropout masks
// can be regenerated in backward, and a resumed run draws what an uninterrupted one would have.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define MUONREC_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define MUONREC_HOST_DEVICE inline
#endif

namespace muonrec {

struct Philox4x32 {
  uint32_t v[4];
};

MUONREC_HOST_DEVICE void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t product = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(product >> 32);
  lo = static_cast<uint32_t>(product);
}

// Ten rounds of Philox-4x32 on a 128-bit counter under a 64-bit key.
MUONREC_HOST_DEVICE Philox4x32 philox4x32(uint64_t counter_lo, uint64_t counter_hi, uint64_t key) {
  uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, c0, hi0, lo0);
    philox_mulhilo(0xCD9E8D57u, c2, hi1, lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

// A uniform float in [0, 1) from the top 24 bits (exactly representable).
MUONREC_HOST_DEVICE float uint_to_unit_float(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }

// The uniform draw for element `index` of stream `offset` under `seed`: one Philox call yields four
// numbers, used for four consecutive elements.
MUONREC_HOST_DEVICE float philox_uniform(uint64_t seed, uint64_t offset, uint64_t index) {
  Philox4x32 r = philox4x32(index / 4, offset, seed);
  return uint_to_unit_float(r.v[index % 4]);
}

// Host-side state: a seed and a running offset. Each consumer (one dropout call, one shuffle) takes
// a fresh offset, so draws never overlap; saving (seed, offset) in a checkpoint restores the stream.
class PhiloxGenerator {
 public:
  explicit PhiloxGenerator(uint64_t seed = 0, uint64_t offset = 0) : seed_(seed), offset_(offset) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }
  // Reserves the next stream and returns its offset.
  uint64_t next_offset() { return offset_++; }
  // Host draws (shuffles, sampling, initialisation), advancing one stream per call.
  float uniform() { return philox_uniform(seed_, next_offset(), 0); }
  uint64_t uniform_u64() {
    Philox4x32 r = philox4x32(0, next_offset(), seed_);
    return (static_cast<uint64_t>(r.v[0]) << 32) | r.v[1];
  }
  // Standard normal by Box-Muller.
  float normal();

 private:
  uint64_t seed_;
  uint64_t offset_;
};

}  // namespace muonrec
