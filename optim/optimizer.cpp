#include "muonrec/optim/optimizer.h"

#include <cmath>

namespace muonrec {

void check_learning_rate_and_decay(const char* optimizer, float lr, float weight_decay) {
  MUONREC_CHECK(std::isfinite(lr) && lr >= 0, "{}: the learning rate must be a finite number >= 0, got {}", optimizer,
                lr);
  MUONREC_CHECK(std::isfinite(weight_decay) && weight_decay >= 0,
                "{}: weight decay must be a finite number >= 0, got {}", optimizer, weight_decay);
  // Decoupled decay multiplies the weights by 1 - lr x weight decay each step.
  MUONREC_CHECK(static_cast<double>(lr) * weight_decay < 1.0,
                "{}: learning rate {} x weight decay {} is not below 1: each step would scale the weights by {}",
                optimizer, lr, weight_decay, 1.0 - static_cast<double>(lr) * weight_decay);
}

void load_state_tensor(const SafetensorsFile& file, const std::string& key, Tensor& into, float lowest) {
  const Tensor& src = file.at(key);
  MUONREC_CHECK(src.shape() == into.shape() && src.dtype() == into.dtype(),
                "{}: optimizer state '{}' is {} {}, expected {} {}", file.path, key, dtype_name(src.dtype()),
                shape_str(src.shape()), dtype_name(into.dtype()), shape_str(into.shape()));
  // Damaged moments would make the first steps NaN, blamed on the learning rate.
  if (src.dtype() == DType::F32) file.check_values(key, "optimizer state", lowest);
  into.copy_from(src);
}

int64_t load_state_step(const SafetensorsFile& file, const std::string& key) {
  const Tensor& step = file.at(key);
  MUONREC_CHECK(step.dtype() == DType::I64 && step.numel() == 1, "{}: optimizer step '{}' is {} {}, expected I64 [1]",
                file.path, key, dtype_name(step.dtype()), shape_str(step.shape()));
  const int64_t value = step.to_i64_vector()[0];
  MUONREC_CHECK(value >= 0, "{}: optimizer step '{}' is {}", file.path, key, value);
  return value;
}

}  // namespace muonrec
