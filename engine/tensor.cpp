#include "muonrec/engine/tensor.h"

#include <algorithm>
#include <cmath>

#include "muonrec/engine/error.h"
#include "muonrec/engine/ops.h"

namespace muonrec {

std::string shape_str(const Shape& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

int64_t shape_numel(const Shape& shape) {
  for (int64_t s : shape) MUONREC_CHECK(s >= 0, "negative dimension in shape {}", shape_str(shape));
  // A zero anywhere makes an empty tensor, whatever the product of the other dimensions.
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t n = 1;
  for (int64_t s : shape)
    MUONREC_CHECK(!__builtin_mul_overflow(n, s, &n), "shape {} has more elements than 64 bits count",
                  shape_str(shape));
  return n;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  size_t bytes = 0;
  MUONREC_CHECK(!__builtin_mul_overflow(static_cast<size_t>(shape_numel(shape)), dtype_size(dtype), &bytes),
                "shape {} has more bytes than 64 bits count", shape_str(shape));
  impl->storage = std::make_shared<Storage>(bytes, device);
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_zero();
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  return from_f32(std::vector<float>(static_cast<size_t>(shape_numel(shape)), value), shape, device);
}

Tensor Tensor::from_f32(const std::vector<float>& values, const Shape& shape, Device device) {
  MUONREC_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
                "from_f32: {} values for shape {}", values.size(), shape_str(shape));
  Tensor t = empty(shape, DType::F32, device);
  copy_bytes(t.raw_data(), device, values.data(), Device::CPU, t.nbytes());
  return t;
}

Tensor Tensor::from_i64(const std::vector<int64_t>& values, const Shape& shape, Device device) {
  MUONREC_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
                "from_i64: {} values for shape {}", values.size(), shape_str(shape));
  Tensor t = empty(shape, DType::I64, device);
  copy_bytes(t.raw_data(), device, values.data(), Device::CPU, t.nbytes());
  return t;
}

TensorImpl& Tensor::checked() const {
  MUONREC_CHECK(impl_, "use of an undefined tensor (a default-constructed Tensor, or the grad() of a tensor that no "
                "backward reached)");
  return *impl_;
}

const Shape& Tensor::shape() const { return checked().shape; }

int Tensor::rank() const { return static_cast<int>(shape().size()); }

int64_t Tensor::dim(int axis) const {
  int r = rank();
  int a = axis < 0 ? axis + r : axis;
  MUONREC_CHECK(a >= 0 && a < r, "axis {} out of range for shape {}", axis, shape_str(shape()));
  return checked().shape[a];
}

int64_t Tensor::numel() const { return shape_numel(shape()); }
DType Tensor::dtype() const { return checked().dtype; }
Device Tensor::device() const { return checked().storage->device(); }

void* Tensor::raw_data() const {
  return static_cast<char*>(checked().storage->data()) + impl_->offset_bytes;
}

template <typename T>
static constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<uint16_t>() { return DType::BF16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }

template <typename T>
T* Tensor::data() const {
  MUONREC_CHECK(dtype() == dtype_of<T>(), "tensor of dtype {} accessed as {}", dtype_name(dtype()),
                dtype_name(dtype_of<T>()));
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template uint16_t* Tensor::data<uint16_t>() const;
template int32_t* Tensor::data<int32_t>() const;
template int64_t* Tensor::data<int64_t>() const;

Tensor Tensor::to(Device device) const {
  if (this->device() == device) return *this;
  Tensor out = empty(shape(), dtype(), device);
  copy_bytes(out.raw_data(), device, raw_data(), this->device(), nbytes());
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  copy_bytes(out.raw_data(), device(), raw_data(), device(), nbytes());
  return out;
}

Tensor Tensor::to_dtype(DType target) const {
  if (dtype() == target) return *this;
  return ops::cast(*this, target);
}

std::vector<float> Tensor::to_f32_vector() const {
  Tensor host = to_dtype(DType::F32).to(Device::CPU);
  const float* p = host.data<float>();
  return std::vector<float>(p, p + numel());
}

std::vector<int64_t> Tensor::to_i64_vector() const {
  Tensor host = to_dtype(DType::I64).to(Device::CPU);
  const int64_t* p = host.data<int64_t>();
  return std::vector<int64_t>(p, p + numel());
}

float Tensor::item() const {
  MUONREC_CHECK(numel() == 1, "item() on a tensor of shape {}", shape_str(shape()));
  return to_f32_vector()[0];
}

void Tensor::fill_zero() { fill_bytes(raw_data(), device(), 0, nbytes()); }

void Tensor::copy_from(const Tensor& src) {
  MUONREC_CHECK(src.shape() == shape() && src.dtype() == dtype(), "copy_from: {} {} into {} {}",
                dtype_name(src.dtype()), shape_str(src.shape()), dtype_name(dtype()), shape_str(shape()));
  copy_bytes(raw_data(), device(), src.raw_data(), src.device(), nbytes());
}

bool Tensor::requires_grad() const { return impl_ && impl_->grad_slot && impl_->grad_slot->requires_grad; }

Tensor& Tensor::set_requires_grad(bool enabled) {
  MUONREC_CHECK(!enabled || dtype() == DType::F32, "only f32 tensors can require gradients");
  TensorImpl& impl = checked();
  if (enabled || impl.grad_slot) impl.slot().requires_grad = enabled;
  return *this;
}

Tensor Tensor::grad() const {
  const TensorImpl& impl = checked();
  return impl.grad_slot && impl.grad_slot->grad ? Tensor(impl.grad_slot->grad) : Tensor();
}

void Tensor::set_grad(const Tensor& grad) const {
  MUONREC_CHECK(grad.defined() && grad.shape() == shape() && grad.dtype() == DType::F32 && grad.device() == device(),
                "set_grad: a gradient for a {} tensor of shape {} on {} must be F32 of that shape on that device, got "
                "{}",
                dtype_name(dtype()), shape_str(shape()), device_name(device()),
                grad.defined() ? fmt::format("{} {} on {}", dtype_name(grad.dtype()), shape_str(grad.shape()),
                                             device_name(grad.device()))
                               : std::string("an undefined tensor"));
  GradSlot& slot = checked().slot();
  if (slot.grad_persistent) {
    Tensor::from_impl(slot.grad).copy_from(grad);
    return;
  }
  slot.grad = grad.impl_;
}

void Tensor::zero_grad() const {
  TensorImpl& impl = checked();
  if (!impl.grad_slot) return;
  GradSlot& slot = *impl.grad_slot;
  if (slot.grad_persistent) {
    Tensor::from_impl(slot.grad).fill_zero();
    return;
  }
  slot.grad.reset();
}

void Tensor::attach_grad_buffer(const Tensor& buffer) const {
  MUONREC_CHECK(buffer.shape() == shape() && buffer.dtype() == DType::F32 && buffer.device() == device(),
                "attach_grad_buffer: buffer {} {} on {} for a tensor {} on {}", dtype_name(buffer.dtype()),
                shape_str(buffer.shape()), device_name(buffer.device()), shape_str(shape()), device_name(device()));
  GradSlot& slot = checked().slot();
  slot.grad = buffer.impl_;
  slot.grad_persistent = true;
}

bool Tensor::has_grad_buffer() const {
  const TensorImpl& impl = checked();
  return impl.grad_slot && impl.grad_slot->grad_persistent;
}

bool Tensor::is_leaf() const { return checked().is_leaf; }

static Tensor make_view(const Tensor& base, Shape shape, size_t extra_offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->offset_bytes = base.impl()->offset_bytes + extra_offset;
  impl->shape = std::move(shape);
  impl->dtype = base.dtype();
  impl->is_leaf = false;
  return Tensor::from_impl(std::move(impl));
}

Tensor Tensor::reshape(Shape shape) const {
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      MUONREC_CHECK(infer < 0, "reshape: more than one -1 in {}", shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      MUONREC_CHECK(shape[i] >= 0, "reshape: dimension {} of {} is negative (only one -1, to infer, may be)", i,
                    shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    MUONREC_CHECK(known > 0 && numel() % known == 0, "reshape: cannot infer {} from {}", shape_str(shape),
                  shape_str(this->shape()));
    shape[infer] = numel() / known;
  }
  MUONREC_CHECK(shape_numel(shape) == numel(), "reshape: {} to {} changes the element count",
                shape_str(this->shape()), shape_str(shape));
  Tensor view = make_view(*this, shape, 0);
  ops::detail::record_view_backward(*this, view, 0);
  return view;
}

Tensor Tensor::narrow_rows(int64_t start, int64_t count) const {
  // count <= dim(0) - start: start + count could overflow.
  MUONREC_CHECK(rank() >= 1 && start >= 0 && count >= 0 && start <= dim(0) && count <= dim(0) - start,
                "narrow_rows({}, {}) out of range for shape {}", start, count, shape_str(shape()));
  Shape shape = this->shape();
  int64_t row = numel() / std::max<int64_t>(dim(0), 1);
  shape[0] = count;
  Tensor view = make_view(*this, shape, static_cast<size_t>(start * row) * dtype_size(dtype()));
  ops::detail::record_view_backward(*this, view, start * row);
  return view;
}

void check_defined(const Tensor& t, const char* op, const char* arg) {
  MUONREC_CHECK(t.defined(), "{}: argument '{}' is undefined", op, arg);
}

void check_dtype(const Tensor& t, DType dtype, const char* op, const char* arg) {
  check_defined(t, op, arg);
  MUONREC_CHECK(t.dtype() == dtype, "{}: '{}' must be {}, got {}", op, arg, dtype_name(dtype), dtype_name(t.dtype()));
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  MUONREC_CHECK(a.device() == b.device(), "{}: arguments on different devices ({} and {})", op,
                device_name(a.device()), device_name(b.device()));
}

}  // namespace muonrec
