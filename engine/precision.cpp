#include "muonrec/engine/precision.h"

#include <atomic>

#include "muonrec/engine/error.h"

namespace muonrec {
namespace {

// Process-wide: atomic so that any thread may read it while another sets it.
std::atomic<MatmulPrecision> g_matmul_precision{MatmulPrecision::FP32};

}  // namespace

void set_matmul_precision(MatmulPrecision precision) { g_matmul_precision.store(precision); }

MatmulPrecision matmul_precision() { return g_matmul_precision.load(); }

MatmulPrecision parse_matmul_precision(const std::string& name) {
  if (name == "fp32") return MatmulPrecision::FP32;
  if (name == "tf32") return MatmulPrecision::TF32;
  if (name == "bf16") return MatmulPrecision::BF16;
  MUONREC_FAIL("unknown matmul precision '{}' (expected fp32, tf32 or bf16)", name);
}

const char* matmul_precision_name(MatmulPrecision precision) {
  switch (precision) {
    case MatmulPrecision::FP32: return "fp32";
    case MatmulPrecision::TF32: return "tf32";
    case MatmulPrecision::BF16: return "bf16";
  }
  return "unknown";
}

}  // namespace muonrec
