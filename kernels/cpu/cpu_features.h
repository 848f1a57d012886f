// Run-time CPU feature checks for the kernels with an AVX2 path, so that the library is built for
// any x86-64 and still uses the wider instructions where they exist.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MUONREC_X86_DISPATCH 1

namespace muonrec::kernels::cpu {

inline bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

inline bool cpu_has_avx2_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

}  // namespace muonrec::kernels::cpu
#endif
