// Tensor: a contiguous, typed view into shared storage, plus what autograd needs (a gradient slot
// and the node that produced it). Copies of a Tensor share the same impl, like a shared pointer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "muonrec/engine/allocator.h"
#include "muonrec/engine/device.h"
#include "muonrec/engine/dtype.h"

namespace muonrec {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& shape);
int64_t shape_numel(const Shape& shape);

struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;

  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, float value, Device device = Device::CPU);
  static Tensor from_f32(const std::vector<float>& values, const Shape& shape, Device device = Device::CPU);
  static Tensor from_i64(const std::vector<int64_t>& values, const Shape& shape, Device device = Device::CPU);

  static Tensor from_impl(std::shared_ptr<TensorImpl> impl) { return Tensor(std::move(impl)); }

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t dim(int axis) const;  // negative axes count from the end
  int rank() const;
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }

  void* raw_data() const;
  // Typed access; throws when T does not match the dtype (bf16 is accessed as uint16_t).
  template <typename T>
  T* data() const;

  // A copy on another device (or the same tensor when it already lives there).
  Tensor to(Device device) const;
  // A copy converted to another dtype (f32 <-> bf16, i32 <-> i64), same device.
  Tensor to_dtype(DType dtype) const;
  Tensor clone() const;
  // Host copies of the values, converted to f32 or i64.
  std::vector<float> to_f32_vector() const;
  std::vector<int64_t> to_i64_vector() const;
  float item() const;  // the single value of a one-element tensor

  // A view with another shape over the same storage (differentiable); one axis may be -1.
  Tensor reshape(Shape shape) const;
  // Rows [start, start+count) of the leading axis: a view sharing storage (differentiable).
  Tensor narrow_rows(int64_t start, int64_t count) const;

  void fill_zero();
  void copy_from(const Tensor& src);  // same shape and dtype, any devices

  // Autograd.
  bool requires_grad() const;
  Tensor& set_requires_grad(bool enabled);
  Tensor grad() const;
  // Sets the gradient (copied into the persistent buffer when the tensor has one).
  void set_grad(const Tensor& grad) const;
  // Drops the gradient (the next backward writes a fresh one); zero-fills a persistent buffer.
  void zero_grad() const;
  // Gives the tensor a persistent gradient buffer (a view into a flat arena): from then on its
  // gradient is always defined, backward adds into it in place, and its address never changes, so
  // a fused optimizer can keep a pointer table and a captured graph can replay.
  void attach_grad_buffer(const Tensor& buffer) const;
  bool has_grad_buffer() const;  // since attach_grad_buffer
  // A leaf is a tensor the user made (a parameter, an input); op outputs are not leaves.
  bool is_leaf() const;

  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }
  bool same_as(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  // The impl, or an Error when the tensor is undefined.
  TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

// Where a tensor's gradient lives. Apart from the values so that autograd (the tape, and nodes that
// need only where an input's gradient goes) can hold it without keeping the storage alive.
struct GradSlot {
  bool requires_grad = false;
  bool grad_persistent = false;  // grad is a fixed buffer: accumulate in place, never replace
  bool graph_consumed = false;   // an op's output whose node a backward (or clear_tape) has dropped
  std::shared_ptr<TensorImpl> grad;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  size_t offset_bytes = 0;
  Shape shape;
  DType dtype = DType::F32;
  bool is_leaf = true;
  std::shared_ptr<GradSlot> grad_slot;  // made when the tensor first requires or is given a gradient
  GradSlot& slot() {
    if (!grad_slot) grad_slot = std::make_shared<GradSlot>();
    return *grad_slot;
  }
};

// Validation used by every op: the message names the op and the argument.
void check_dtype(const Tensor& t, DType dtype, const char* op, const char* arg);
void check_same_device(const Tensor& a, const Tensor& b, const char* op);
void check_defined(const Tensor& t, const char* op, const char* arg);

}  // namespace muonrec
