// linear_cross_entropy (chunked over items): equal to cross_entropy(scale * linear(h, W)) in value
// and gradients for any chunk size, finite-difference gradients, and GPU parity.
#include "test_util.h"

using namespace muonrec;
using muonrec::testkit::random_tensor;
using muonrec::testkit::relative_error;

namespace {

struct LossAndGrads {
  float loss;
  std::vector<float> dh, dw;
};

LossAndGrads run(bool chunked, int64_t chunk, const Tensor& h0, const Tensor& w0, const Tensor& targets, float scale,
                 Device device = Device::CPU) {
  Tensor h = h0.clone().to(device).set_requires_grad(true);
  Tensor w = w0.clone().to(device).set_requires_grad(true);
  Tensor t = targets.to(device);
  Tensor loss = chunked ? ops::linear_cross_entropy(h, w, t, scale, chunk)
                        : ops::cross_entropy(ops::scale(ops::linear(h, w), scale), t);
  backward(loss);
  return {loss.item(), h.grad().to_f32_vector(), w.grad().to_f32_vector()};
}

Tensor targets_with_ignored(int64_t rows, int64_t classes) {
  std::vector<int64_t> t(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) t[r] = r % 4 == 3 ? -1 : (r * 7919) % classes;
  return Tensor::from_i64(t, {rows});
}

}  // namespace

TEST(LinearCrossEntropy, equals_the_two_op_form_for_every_chunk_size) {
  const int64_t rows = 37, d = 12, classes = 101;
  Tensor h = random_tensor({rows, d}, 1), w = random_tensor({classes, d}, 2);
  Tensor targets = targets_with_ignored(rows, classes);
  LossAndGrads reference = run(false, 0, h, w, targets, 2.5f);
  for (int64_t chunk : {1, 7, 50, 101, 4096}) {
    LossAndGrads chunked = run(true, chunk, h, w, targets, 2.5f);
    EXPECT_NEAR(chunked.loss, reference.loss, 1e-5 * std::fabs(reference.loss)) << "chunk " << chunk;
    EXPECT_LT(relative_error(chunked.dh, reference.dh), 1e-5) << "chunk " << chunk;
    EXPECT_LT(relative_error(chunked.dw, reference.dw), 1e-5) << "chunk " << chunk;
  }
}

TEST(LinearCrossEntropy, finite_difference_gradients) {
  Tensor targets = Tensor::from_i64({3, -1, 0, 8, 5}, {5});
  testkit::expect_gradients_match(
      [targets](auto& in) { return ops::linear_cross_entropy(in[0], in[1], targets, 1.5f, 4); },
      {random_tensor({5, 6}, 3).set_requires_grad(true), random_tensor({9, 6}, 4).set_requires_grad(true)});
}

TEST(LinearCrossEntropy, all_targets_ignored_gives_zero_loss_and_gradients) {
  Tensor h = random_tensor({3, 4}, 5), w = random_tensor({6, 4}, 6);
  LossAndGrads out = run(true, 4, h, w, Tensor::from_i64({-1, -1, -1}, {3}), 1.0f);
  EXPECT_EQ(out.loss, 0.0f);
  EXPECT_EQ(out.dh, std::vector<float>(12, 0.0f));
  EXPECT_THROW(ops::linear_cross_entropy(h, w, Tensor::from_i64({6, 0, 0}, {3})), Error);
  EXPECT_THROW(ops::linear_cross_entropy(h, w, Tensor::from_i64({0, 0, 0}, {3}), 1.0f, 0), Error);
}

TEST(LinearCrossEntropyGpu, matches_cpu_N1000_d64_V3001_chunk512) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 1000, d = 64, classes = 3001;
  Tensor h = random_tensor({rows, d}, 7), w = random_tensor({classes, d}, 8, 0.2f);
  Tensor targets = targets_with_ignored(rows, classes);
  LossAndGrads cpu = run(true, 512, h, w, targets, 1.0f);
  LossAndGrads gpu = run(true, 512, h, w, targets, 1.0f, Device::CUDA);
  EXPECT_NEAR(gpu.loss, cpu.loss, 1e-4 * std::fabs(cpu.loss));
  EXPECT_LT(relative_error(gpu.dh, cpu.dh), 1e-4);
  EXPECT_LT(relative_error(gpu.dw, cpu.dw), 1e-4);
}
