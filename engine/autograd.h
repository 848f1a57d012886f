// Reverse-mode autograd on a tape. Each differentiable op that sees an input requiring gradients
// pushes a Node (holding what its backward needs, and no more) and its output's gradient slot onto
// the thread's tape (never the output's values: an intermediate lives only as long as something
// still reads it); backward(loss) walks the tape in reverse. Gradients are combined out of place,
// so a gradient tensor is never mutated after it is handed on and aliasing between gradients is
// harmless.
// Parameter (leaf) gradients accumulate across backward calls until zero_grad(). An op's output
// computed before a backward (or clear_tape) has lost the node leading to its inputs: an op that
// takes it as an input while recording is refused, as no gradient would get past it.
// Nodes hold the tensors their backward reads, not copies: writing into one of them between the
// forward and the backward (add_into, copy_from into a view) changes the gradients, as an in-place
// edit of a saved tensor would in PyTorch were it not for its version counters. Embedding ids are
// checked again in the backward on the CPU, since changed ones would index outside the table.
#pragma once

#include <memory>
#include <vector>

#include "muonrec/engine/tensor.h"

namespace muonrec {

struct Node {
  virtual ~Node() = default;
  virtual const char* name() const = 0;
  // Computes the gradients of the node's inputs from the gradient of its output and hands them to
  // accumulate_grad.
  virtual void backward(const Tensor& grad_output) = 0;
};

// True unless a NoGradGuard is alive on this thread.
bool grad_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and any input requires a gradient: the op must then record a node.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);

// Marks `output` as produced by `node` and appends both to the tape.
void record_node(Tensor& output, std::shared_ptr<Node> node);

// Where an input's gradient goes (its gradient slot, shape and device) without its values. A node
// whose backward needs only that of an input (add, scale, dropout, sum, split_last, views) holds
// this in place of the tensor, so the input's storage is freed as soon as the forward is done with
// it instead of living until backward.
class GradTarget {
 public:
  GradTarget() = default;
  explicit GradTarget(const Tensor& t);
  const Shape& shape() const { return shape_; }
  Device device() const { return device_; }
  int64_t numel() const { return shape_numel(shape_); }
  bool requires_grad() const { return slot_ && slot_->requires_grad; }

 private:
  friend void accumulate_grad(const GradTarget& target, const Tensor& grad);
  std::shared_ptr<GradSlot> slot_;
  Shape shape_;
  Device device_ = Device::CPU;
};

// Adds `grad` to the target's gradient (or sets it when there is none). No-op when it does not
// require grad.
void accumulate_grad(const GradTarget& target, const Tensor& grad);
void accumulate_grad(const Tensor& t, const Tensor& grad);

// Seeds d(loss)/d(loss) = 1 (loss must have one element), runs the tape backwards, clears it. A
// loss recorded before an earlier backward (its graph consumed) is refused; a leaf loss (a
// parameter of one element) adds 1 to its own gradient.
void backward(const Tensor& loss);
// Drops everything recorded since the last backward (e.g. after a forward whose loss is unused).
void clear_tape();
size_t tape_size();

}  // namespace muonrec
