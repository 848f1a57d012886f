#include "muonrec/engine/autograd.h"

#include <algorithm>
#include <utility>

#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/engine/ops.h"

namespace muonrec {
namespace {

thread_local bool t_grad_enabled = true;

// The output's gradient slot, not the output itself: the tape keeps no values alive.
struct TapeEntry {
  std::shared_ptr<Node> node;
  std::shared_ptr<GradSlot> output;
};
thread_local std::vector<TapeEntry> t_tape;

// Every output of `tape` has lost its node: a gradient reaching one would go nowhere.
void mark_consumed(const std::vector<TapeEntry>& tape) {
  for (const TapeEntry& entry : tape) entry.output->graph_consumed = true;
}

}  // namespace

bool grad_enabled() { return t_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  bool any = false;
  for (const Tensor* t : inputs) {
    if (!t || !t->defined() || !t->requires_grad()) continue;
    // Its gradient would stop there, and the parameters behind it would get nothing, silently.
    MUONREC_CHECK(!t->impl()->grad_slot->graph_consumed,
                  "an input of shape {} was computed by a graph that a backward since consumed (or clear_tape "
                  "dropped): no gradient would reach what it was computed from; compute it again",
                  shape_str(t->shape()));
    any = true;
  }
  return any;
}

void record_node(Tensor& output, std::shared_ptr<Node> node) {
  output.impl()->is_leaf = false;
  GradSlot& slot = output.impl()->slot();
  slot.requires_grad = true;
  t_tape.push_back({std::move(node), output.impl()->grad_slot});
}

GradTarget::GradTarget(const Tensor& t)
    : slot_(t.defined() ? t.impl()->grad_slot : nullptr),
      shape_(t.defined() ? t.shape() : Shape{}),
      device_(t.defined() ? t.device() : Device::CPU) {}

void accumulate_grad(const GradTarget& target, const Tensor& grad) {
  if (!target.requires_grad()) return;
  MUONREC_CHECK(grad.shape() == target.shape(), "internal: gradient of shape {} for a tensor of shape {}",
                shape_str(grad.shape()), shape_str(target.shape()));
  NoGradGuard no_grad;
  GradSlot& slot = *target.slot_;
  if (slot.grad_persistent) {
    ops::add_into(Tensor::from_impl(slot.grad), grad);
    return;
  }
  slot.grad = slot.grad ? ops::add(Tensor::from_impl(slot.grad), grad).impl() : grad.impl();
}

void accumulate_grad(const Tensor& t, const Tensor& grad) { accumulate_grad(GradTarget(t), grad); }

void backward(const Tensor& loss) {
  NVTX_RANGE("backward");
  MUONREC_CHECK(loss.numel() == 1, "backward: the loss must have one element, got shape {}", shape_str(loss.shape()));
  MUONREC_CHECK(loss.requires_grad(), "backward: the loss does not depend on any tensor that requires a gradient");
  const bool leaf = loss.impl()->is_leaf;
  // Otherwise nothing would reach the parameters, without a word.
  MUONREC_CHECK(leaf || std::any_of(t_tape.begin(), t_tape.end(),
                                    [&](const TapeEntry& e) { return e.output == loss.impl()->grad_slot; }),
                "backward: the loss's graph is no longer on the tape: a backward since it was computed consumed the "
                "tape (or clear_tape dropped it); compute it again, or add the losses and call backward once");
  std::vector<TapeEntry> tape;
  tape.swap(t_tape);  // the tape is consumed even when a backward throws
  mark_consumed(tape);
  const Tensor seed = Tensor::full(loss.shape(), 1.0f, loss.device());
  if (leaf)
    accumulate_grad(loss, seed);  // a parameter's gradient accumulates (into its buffer, if it has one)
  else
    loss.impl()->slot().grad = seed.impl();
  NoGradGuard no_grad;
  for (auto it = tape.rbegin(); it != tape.rend(); ++it) {
    std::shared_ptr<TensorImpl> grad = it->output->grad;
    if (!grad) continue;  // this output does not reach the loss
    it->node->backward(Tensor::from_impl(grad));
    // Intermediate gradients are written once and consumed here; free them as the walk goes on.
    it->output->grad.reset();  // outputs are never leaves
    it->node.reset();
  }
}

void clear_tape() {
  mark_consumed(t_tape);
  t_tape.clear();
}
size_t tape_size() { return t_tape.size(); }

}  // namespace muonrec
