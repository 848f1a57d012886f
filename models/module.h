// Named parameters and the layers every model is built from (torch.nn names and layouts, so
// checkpoints and the PyTorch fixtures map one to one).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "muonrec/engine/rng.h"
#include "muonrec/engine/safetensors.h"
#include "muonrec/engine/tensor.h"

namespace muonrec {

struct NamedParameter {
  std::string name;
  Tensor tensor;
  bool embedding = false;  // a lookup table (optimizer policies treat these apart)
};

// Owns the list of a model's parameters in registration order. Layers hold handles to the same
// tensors, so loading a checkpoint copies into them in place.
class ParameterList {
 public:
  Tensor add(const std::string& name, const Tensor& tensor, bool embedding = false);
  const std::vector<NamedParameter>& all() const { return params_; }
  const Tensor& find(const std::string& name) const;  // throws naming the missing parameter
  int64_t numel() const;
  void zero_grad();
  // Moves every parameter's gradient into one flat buffer per device (see
  // Tensor::attach_grad_buffer); zero_grad then clears them with one memset. Idempotent.
  void allocate_grad_arena();
  // Scales every gradient so that their global L2 norm is at most max_norm (as
  // torch.nn.utils.clip_grad_norm_), on the device, and returns the norm before clipping as a
  // one-element tensor there (read it only when needed: reading synchronises). Needs the arena.
  Tensor clip_grad_norm(float max_norm);
  // Copies tensors named prefix + parameter name from `file` into the parameters (in place, any
  // device). Every parameter must be present with its exact shape, and every tensor under the
  // prefix must be a parameter (another architecture's checkpoint is refused); errors name the tensor.
  void load_from(const SafetensorsFile& file, const std::string& prefix);
  // name -> tensor with the prefix prepended (for saving).
  std::map<std::string, Tensor> named(const std::string& prefix) const;

 private:
  std::vector<NamedParameter> params_;
  std::vector<Tensor> grad_arenas_;  // one per device, when allocated
};

// The transformer blocks a checkpoint's config asks for (ff and head_dim 0: d, and the heads split d).
struct BlockShape {
  int64_t blocks = 0, d = 0, ff = 0, heads = 0, head_dim = 0;
};

// A checkpoint's config sizes the model built before its tensors load. One that asks for more
// blocks than `file` holds parameter tensors (each block has several), or for a parameter larger
// than the file's largest (a block's fc1 [ff, d] or queries [heads x head-dim, d], or one of
// `table_sizes`: a description such as "maxlen x d" and an element count), is damaged: refused here
// rather than after allocating a model that size (a damaged config could ask for terabytes).
void check_config_fits_the_file(const SafetensorsFile& file, const BlockShape& blocks,
                                std::vector<std::pair<std::string, double>> table_sizes);

// Host-side initialisers (drawn on the host from the model's generator, then copied to the device,
// so a seed gives the same initial weights on CPU and GPU).
Tensor init_normal(const Shape& shape, float std, PhiloxGenerator& gen, Device device);
Tensor init_uniform(const Shape& shape, float bound, PhiloxGenerator& gen, Device device);
Tensor init_constant(const Shape& shape, float value, Device device);

// torch.nn.Linear: weight [out, in], bias [out]; both U(-1/sqrt(in), 1/sqrt(in)) as torch's default.
struct Linear {
  Tensor weight, bias;
  Linear() = default;
  Linear(ParameterList& params, const std::string& name, int64_t in, int64_t out, bool with_bias,
         PhiloxGenerator& gen, Device device);
  Tensor operator()(const Tensor& x) const;
};

// torch.nn.LayerNorm with affine weight (ones) and bias (zeros).
struct LayerNorm {
  Tensor weight, bias;
  float eps = 1e-5f;
  LayerNorm() = default;
  LayerNorm(ParameterList& params, const std::string& name, int64_t dim, float eps, Device device);
  Tensor operator()(const Tensor& x) const;
};

}  // namespace muonrec
