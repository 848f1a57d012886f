#include "muonrec/kernels/cpu/packed_keys.h"

namespace muonrec::kernels::cpu {

void PackedKeys::pack(const float* valid, int64_t seq, const float* k_rows, const float* v_rows, int64_t row,
                      int64_t head_dim) {
  positions.clear();
  for (int64_t t = 0; t < seq; ++t)
    if (valid[t] != 0.0f) positions.push_back(t);
  k.resize(static_cast<size_t>(count() * head_dim));
  v.resize(k.size());
  for (int64_t c = 0; c < count(); ++c) {
    std::copy_n(k_rows + positions[c] * row, head_dim, k.data() + c * head_dim);
    std::copy_n(v_rows + positions[c] * row, head_dim, v.data() + c * head_dim);
  }
}

void PackedKeys::scatter(const float* src, int64_t head_dim, float* dst, int64_t row) const {
  for (int64_t c = 0; c < count(); ++c) std::copy_n(src + c * head_dim, head_dim, dst + positions[c] * row);
}

}  // namespace muonrec::kernels::cpu
