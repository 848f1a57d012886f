// Many Philox-4x32-10 draws at once for the CPU kernels (dropout): the same numbers as
// engine/rng.h's philox4x32, computed four counters per AVX2 instruction where the CPU has AVX2
// (checked at run time, so the library stays portable), one at a time elsewhere. Ten rounds of two
// 32x32->64 multiplies per counter made the scalar loop a sixth of a CPU training step.
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// draws[4 * i + k] = philox4x32(first_counter + i, counter_hi, key).v[k] for i in [0, counters).
void philox_draws(uint64_t first_counter, int64_t counters, uint64_t counter_hi, uint64_t key, uint32_t* draws);

}  // namespace muonrec::kernels::cpu
