// The interface every optimizer implements, so parameter groups can mix AdamW and Muon and a
// checkpoint can hold any of them.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "muonrec/engine/safetensors.h"
#include "muonrec/models/module.h"

namespace muonrec {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual const char* name() const = 0;
  // Applies one update to every parameter that has a gradient.
  virtual void step() = 0;
  virtual void set_lr(float lr) = 0;
  virtual float lr() const = 0;
  virtual int64_t steps() const = 0;
  virtual const std::vector<NamedParameter>& params() const = 0;
  // Internal state (moments, step count) under `prefix`, and its restoration.
  virtual std::map<std::string, Tensor> state(const std::string& prefix) const = 0;
  virtual void load_state(const SafetensorsFile& file, const std::string& prefix) = 0;
  // One line for the start-of-run report: hyperparameters.
  virtual std::string describe() const = 0;
};

// Throws, naming the optimizer and the value, unless the learning rate and the weight decay are
// finite, not negative, and their product is below 1 (decoupled decay scales the weights by
// 1 - lr x weight decay each step).
void check_learning_rate_and_decay(const char* optimizer, float lr, float weight_decay);
// Copies file[key] into `into` after checking its shape and that its values are finite and not below
// `lowest`; errors name file and tensor.
void load_state_tensor(const SafetensorsFile& file, const std::string& key, Tensor& into,
                       float lowest = -std::numeric_limits<float>::infinity());
// The step count file[key] holds: one non-negative I64 value; errors name file and tensor.
int64_t load_state_step(const SafetensorsFile& file, const std::string& key);

}  // namespace muonrec
