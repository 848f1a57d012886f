#include "muonrec/models/module.h"

#include <algorithm>

#include <cmath>

#include "muonrec/engine/dispatch.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/ops.h"

namespace muonrec {

Tensor ParameterList::add(const std::string& name, const Tensor& tensor, bool embedding) {
  for (const auto& p : params_) MUONREC_CHECK(p.name != name, "parameter '{}' registered twice", name);
  Tensor t = tensor;
  t.set_requires_grad(true);
  params_.push_back({name, t, embedding});
  return t;
}

const Tensor& ParameterList::find(const std::string& name) const {
  for (const auto& p : params_)
    if (p.name == name) return p.tensor;
  MUONREC_FAIL("no parameter named '{}'", name);
}

int64_t ParameterList::numel() const {
  int64_t n = 0;
  for (const auto& p : params_) n += p.tensor.numel();
  return n;
}

void ParameterList::zero_grad() {
  for (Tensor& arena : grad_arenas_) arena.fill_zero();
  for (auto& p : params_)
    if (!p.tensor.has_grad_buffer()) p.tensor.zero_grad();
}

void ParameterList::allocate_grad_arena() {
  if (!grad_arenas_.empty()) return;
  for (Device device : {Device::CPU, Device::CUDA}) {
    int64_t total = 0;
    for (const auto& p : params_)
      if (p.tensor.device() == device) total += p.tensor.numel();
    if (total == 0) continue;
    Tensor arena = Tensor::zeros({total}, DType::F32, device);
    int64_t offset = 0;
    for (const auto& p : params_) {
      if (p.tensor.device() != device) continue;
      p.tensor.attach_grad_buffer(arena.narrow_rows(offset, p.tensor.numel()).reshape(p.tensor.shape()));
      offset += p.tensor.numel();
    }
    grad_arenas_.push_back(arena);
  }
}

void ParameterList::load_from(const SafetensorsFile& file, const std::string& prefix) {
  for (auto& p : params_) {
    const std::string key = prefix + p.name;
    MUONREC_CHECK(file.contains(key), "{}: missing parameter '{}'", file.path, key);
    const Tensor& src = file.at(key);
    MUONREC_CHECK(src.shape() == p.tensor.shape() && src.dtype() == DType::F32,
                  "{}: parameter '{}' is {} {}, the model expects F32 {}", file.path, key, dtype_name(src.dtype()),
                  shape_str(src.shape()), shape_str(p.tensor.shape()));
    file.check_values(key, "parameter");  // NaN parameters would rank items by nothing
    p.tensor.copy_from(src);
  }
  // A parameter the model lacks means another architecture (e.g. an encoder-decoder's encoder):
  // loading the rest would silently give a different model.
  for (const auto& [key, tensor] : file.tensors) {
    if (key.rfind(prefix, 0) != 0) continue;
    const std::string name = key.substr(prefix.size());
    MUONREC_CHECK(std::any_of(params_.begin(), params_.end(), [&](const NamedParameter& p) { return p.name == name; }),
                  "{}: parameter '{}' is not in this model (a checkpoint of another architecture?)", file.path, key);
  }
}

std::map<std::string, Tensor> ParameterList::named(const std::string& prefix) const {
  std::map<std::string, Tensor> out;
  for (const auto& p : params_) out[prefix + p.name] = p.tensor;
  return out;
}

Tensor ParameterList::clip_grad_norm(float max_norm) {
  MUONREC_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be positive, got {}", max_norm);
  MUONREC_CHECK(grad_arenas_.size() == 1, "clip_grad_norm needs the gradient arena of a single-device model "
                "(call allocate_grad_arena first)");
  Tensor& arena = grad_arenas_.front();
  Tensor norm = Tensor::empty({}, DType::F32, arena.device());
  MUONREC_DISPATCH(arena.device(), clip_grad_norm, arena.data<float>(), arena.numel(), max_norm, norm.data<float>());
  return norm;
}

void check_config_fits_the_file(const SafetensorsFile& file, const BlockShape& shape,
                                std::vector<std::pair<std::string, double>> table_sizes) {
  const int64_t blocks = shape.blocks;
  if (blocks > 0) {  // in double: a damaged config's product may not fit 64 bits
    const double d = static_cast<double>(shape.d);
    table_sizes.insert(
        table_sizes.end(),
        {{"ff x d", static_cast<double>(shape.ff > 0 ? shape.ff : shape.d) * d},
         {"heads x head-dim x d",
          (shape.head_dim > 0 ? static_cast<double>(shape.heads) * static_cast<double>(shape.head_dim) : d) * d}});
  }
  int64_t parameters = 0, largest = 0;
  for (const auto& [name, tensor] : file.tensors) {
    if (name.rfind("param.", 0) != 0) continue;
    ++parameters;
    largest = std::max(largest, tensor.numel());
  }
  MUONREC_CHECK(blocks <= parameters, "its config asks for {} blocks, more than its {} parameter tensors could hold",
                blocks, parameters);
  for (const auto& [what, size] : table_sizes)
    MUONREC_CHECK(size <= static_cast<double>(largest),
                  "its config asks for a parameter of {} = {:.0f} elements, more than its largest parameter tensor "
                  "holds ({})",
                  what, size, largest);
}

Tensor init_normal(const Shape& shape, float std, PhiloxGenerator& gen, Device device) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = gen.normal() * std;
  return Tensor::from_f32(v, shape, device);
}

Tensor init_uniform(const Shape& shape, float bound, PhiloxGenerator& gen, Device device) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = (2.0f * gen.uniform() - 1.0f) * bound;
  return Tensor::from_f32(v, shape, device);
}

Tensor init_constant(const Shape& shape, float value, Device device) { return Tensor::full(shape, value, device); }

Linear::Linear(ParameterList& params, const std::string& name, int64_t in, int64_t out, bool with_bias,
               PhiloxGenerator& gen, Device device) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(in));
  weight = params.add(name + ".weight", init_uniform({out, in}, bound, gen, device));
  if (with_bias) bias = params.add(name + ".bias", init_uniform({out}, bound, gen, device));
}

Tensor Linear::operator()(const Tensor& x) const { return ops::linear(x, weight, bias); }

LayerNorm::LayerNorm(ParameterList& params, const std::string& name, int64_t dim, float eps_, Device device)
    : eps(eps_) {
  weight = params.add(name + ".weight", init_constant({dim}, 1.0f, device));
  bias = params.add(name + ".bias", init_constant({dim}, 0.0f, device));
}

Tensor LayerNorm::operator()(const Tensor& x) const { return ops::layer_norm(x, weight, bias, eps); }

}  // namespace muonrec
