// The small model configs the model tests build on: width 8, two heads, no dropout.
#pragma once

#include <cstdint>
#include <string>

#include "muonrec/models/sequential_model.h"

namespace muonrec::testkit {

inline ModelConfig tiny_model_config(const std::string& kind, int64_t n_items, int64_t max_len, int64_t blocks) {
  ModelConfig c;
  c.kind = kind;
  c.n_items = n_items;
  c.max_len = max_len;
  c.d = 8;
  c.blocks = blocks;
  c.heads = 2;
  c.dropout = 0.0f;
  return c;
}

}  // namespace muonrec::testkit
