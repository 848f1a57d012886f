#include "engine/autograd.h"

#include <utility>

#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/ops.h"

namespace muonrec {
namespace {

thread_local bool t_grad_enabled = true;

struct TapeEntry {
  std::shared_ptr<Node> node;
  std::shared_ptr<TensorImpl> output;
};
thread_local std::vector<TapeEntry> t_tape;

}  // namespace

bool grad_enabled() { return t_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void record_node(Tensor& output, std::shared_ptr<Node> node) {
  output.impl()->requires_grad = true;
  output.impl()->is_leaf = false;
  t_tape.push_back({std::move(node), output.impl()});
}

void accumulate_grad(const Tensor& t, const Tensor& grad) {
  if (!t.defined() || !t.requires_grad()) return;
  MUONREC_CHECK(grad.shape() == t.shape(), "internal: gradient of shape {} for a tensor of shape {}",
                shape_str(grad.shape()), shape_str(t.shape()));
  NoGradGuard no_grad;
  Tensor existing = t.grad();
  if (t.impl()->grad_persistent) {
    ops::add_into(existing, grad);
    return;
  }
  t.impl()->grad = existing.defined() ? ops::add(existing, grad).impl() : grad.impl();
}

void backward(const Tensor& loss) {
  NVTX_RANGE("backward");
  MUONREC_CHECK(loss.numel() == 1, "backward: the loss must have one element, got shape {}", shape_str(loss.shape()));
  MUONREC_CHECK(loss.requires_grad(), "backward: the loss does not depend on any tensor that requires a gradient");
  std::vector<TapeEntry> tape;
  tape.swap(t_tape);  // the tape is consumed even when a backward throws
  loss.impl()->grad = Tensor::full(loss.shape(), 1.0f, loss.device()).impl();
  NoGradGuard no_grad;
  for (auto it = tape.rbegin(); it != tape.rend(); ++it) {
    std::shared_ptr<TensorImpl> grad = it->output->grad;
    if (!grad) continue;  // this output does not reach the loss
    it->node->backward(Tensor::from_impl(grad));
    // Intermediate gradients are written once and consumed here; free them as the walk goes on.
    if (!it->output->is_leaf) it->output->grad.reset();
    it->node.reset();
  }
}

void clear_tape() { t_tape.clear(); }
size_t tape_size() { return t_tape.size(); }

}  // namespace muonrec
