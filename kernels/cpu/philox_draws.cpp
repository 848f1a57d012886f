#include "muonrec/kernels/cpu/philox_draws.h"

#include "muonrec/engine/rng.h"
#include "muonrec/kernels/cpu/cpu_features.h"

#ifdef MUONREC_X86_DISPATCH
#include <immintrin.h>
#endif

namespace muonrec::kernels::cpu {
namespace {

void philox_draws_scalar(uint64_t first_counter, int64_t counters, uint64_t counter_hi, uint64_t key,
                         uint32_t* draws) {
  for (int64_t i = 0; i < counters; ++i) {
    const Philox4x32 r = philox4x32(first_counter + static_cast<uint64_t>(i), counter_hi, key);
    for (int k = 0; k < 4; ++k) draws[4 * i + k] = r.v[k];
  }
}

#ifdef MUONREC_X86_DISPATCH
// Each 64-bit lane carries one 32-bit word of one counter. _mm256_mul_epu32 reads only the low half
// of a lane, so the high halves left by the XORs never need masking; the low halves are exactly the
// scalar words, and only they are stored.
__attribute__((target("avx2"))) int64_t philox_draws_avx2(uint64_t first_counter, int64_t counters,
                                                          uint64_t counter_hi, uint64_t key, uint32_t* draws) {
  const __m256i m0 = _mm256_set1_epi64x(0xD2511F53), m1 = _mm256_set1_epi64x(0xCD9E8D57);
  __m256i key0[10], key1[10];
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    key0[round] = _mm256_set1_epi64x(k0);
    key1[round] = _mm256_set1_epi64x(k1);
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  const __m256i hi_lo = _mm256_set1_epi64x(static_cast<uint32_t>(counter_hi));
  const __m256i hi_hi = _mm256_set1_epi64x(static_cast<uint32_t>(counter_hi >> 32));
  int64_t i = 0;
  for (; i + 4 <= counters; i += 4) {
    alignas(32) uint64_t lo[4], hi[4];
    for (int l = 0; l < 4; ++l) {
      const uint64_t counter = first_counter + static_cast<uint64_t>(i + l);
      lo[l] = static_cast<uint32_t>(counter);
      hi[l] = counter >> 32;
    }
    __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo));
    __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi));
    __m256i c2 = hi_lo, c3 = hi_hi;
    for (int round = 0; round < 10; ++round) {
      const __m256i p0 = _mm256_mul_epu32(c0, m0), p1 = _mm256_mul_epu32(c2, m1);
      const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), c1), key0[round]);
      const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), c3), key1[round]);
      c0 = n0;
      c1 = p1;
      c2 = n2;
      c3 = p0;
    }
    alignas(32) uint64_t words[4][4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(words[0]), c0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(words[1]), c1);
    _mm256_store_si256(reinterpret_cast<__m256i*>(words[2]), c2);
    _mm256_store_si256(reinterpret_cast<__m256i*>(words[3]), c3);
    for (int l = 0; l < 4; ++l)
      for (int k = 0; k < 4; ++k) draws[4 * (i + l) + k] = static_cast<uint32_t>(words[k][l]);
  }
  return i;
}
#endif

}  // namespace

void philox_draws(uint64_t first_counter, int64_t counters, uint64_t counter_hi, uint64_t key, uint32_t* draws) {
  int64_t done = 0;
#ifdef MUONREC_X86_DISPATCH
  if (cpu_has_avx2()) done = philox_draws_avx2(first_counter, counters, counter_hi, key, draws);
#endif
  philox_draws_scalar(first_counter + static_cast<uint64_t>(done), counters - done, counter_hi, key, draws + 4 * done);
}

}  // namespace muonrec::kernels::cpu
