// linear_cross_entropy (tiled over rows and items): equal to cross_entropy(scale * linear(h, W)) in
// value and gradients for any chunk size, finite-difference gradients, GPU parity at every matmul
// precision, and the precision setting itself.
#include "muonrec/engine/precision.h"
#include "muonrec/kernels/cpu/chunked_ce.h"
#include "test_util.h"
#ifdef MUONREC_WITH_CUDA
#include "muonrec/engine/cuda_check.h"
#include "muonrec/kernels/cuda/chunked_ce.h"
#endif

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

void expect_equal_to_the_two_op_form(int64_t rows, int64_t d, int64_t classes, const std::vector<int64_t>& chunks) {
  Tensor h = random_tensor({rows, d}, 1), w = random_tensor({classes, d}, 2);
  Tensor targets = targets_with_ignored(rows, classes);
  LossAndGrads reference = run(false, 0, h, w, targets, 2.5f);
  for (int64_t chunk : chunks) {
    LossAndGrads chunked = run(true, chunk, h, w, targets, 2.5f);
    EXPECT_NEAR(chunked.loss, reference.loss, 1e-5 * std::fabs(reference.loss)) << "chunk " << chunk;
    EXPECT_LT(relative_error(chunked.dh, reference.dh), 1e-5) << "chunk " << chunk;
    EXPECT_LT(relative_error(chunked.dw, reference.dw), 1e-5) << "chunk " << chunk;
  }
}

double max_abs(const std::vector<float>& values) {
  double m = 0.0;
  for (float v : values) m = std::isfinite(v) ? std::max(m, static_cast<double>(std::fabs(v))) : INFINITY;
  return m;
}

// Calls the forward and backward launchers directly (scale 1, dloss 0.75) on outputs poisoned with
// NaN, returned as {logsumexp, loss, valid_count, dh, dweight}: every element must be written.
std::vector<Tensor> launch_on_poisoned_outputs(Device device, const Tensor& h0, const Tensor& w0,
                                               const Tensor& targets0, int64_t chunk) {
  const int64_t rows = h0.dim(0), d = h0.dim(1), classes = w0.dim(0);
  std::vector<Tensor> out = {Tensor::full({rows}, NAN, device), Tensor::full({1}, NAN, device),
                             Tensor::full({1}, NAN, device), Tensor::full({rows, d}, NAN, device),
                             Tensor::full({classes, d}, NAN, device)};
  const Tensor h = h0.to(device), w = w0.to(device), targets = targets0.to(device);
  const Tensor dloss = Tensor::from_f32({0.75f}, {1}, device);
  float *logsumexp = out[0].data<float>(), *loss = out[1].data<float>(), *valid_count = out[2].data<float>();
  float *dh = out[3].data<float>(), *dw = out[4].data<float>();
  const float *hp = h.data<float>(), *wp = w.data<float>();
  const int64_t* tp = targets.data<int64_t>();
  if (device == Device::CPU) {
    kernels::cpu::linear_ce_forward(hp, wp, tp, rows, d, classes, 1.0f, chunk, logsumexp, loss, valid_count);
    kernels::cpu::linear_ce_backward(hp, wp, tp, logsumexp, valid_count, dloss.data<float>(), rows, d, classes, 1.0f,
                                     chunk, dh, dw);
  } else {
#ifdef MUONREC_WITH_CUDA
    kernels::cuda::linear_ce_forward(hp, wp, tp, rows, d, classes, 1.0f, chunk, logsumexp, loss, valid_count,
                                     current_stream());
    kernels::cuda::linear_ce_backward(hp, wp, tp, logsumexp, valid_count, dloss.data<float>(), rows, d, classes, 1.0f,
                                      chunk, dh, dw, current_stream());
#endif
  }
  return out;
}

const char* const kLauncherOutputs[] = {"logsumexp", "loss", "valid_count", "dh", "dweight"};

}  // namespace

TEST(LinearCrossEntropy, equals_the_two_op_form_for_every_chunk_size) {
  expect_equal_to_the_two_op_form(37, 12, 101, {1, 7, 50, 101, 4096});
}

// 300 rows x 4096 items is more than one CPU tile: rows are split into blocks too.
TEST(LinearCrossEntropy, equals_the_two_op_form_across_row_blocks) {
  expect_equal_to_the_two_op_form(300, 5, 5000, {999, 4096});
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
  EXPECT_EQ(out.dw, std::vector<float>(24, 0.0f));
}

TEST(LinearCrossEntropy, rejects_bad_targets_chunks_and_empty_catalogues) {
  Tensor h = random_tensor({3, 4}, 5), w = random_tensor({6, 4}, 6);
  EXPECT_THROW(ops::linear_cross_entropy(h, w, Tensor::from_i64({6, 0, 0}, {3})), Error);
  EXPECT_THROW(ops::linear_cross_entropy(h, w, Tensor::from_i64({0, 0, 0}, {3}), 1.0f, 0), Error);
  Tensor no_classes = Tensor::empty({0, 4});
  testkit::expect_error([&] { ops::linear_cross_entropy(h, no_classes, Tensor::from_i64({-1, -1, -1}, {3})); },
                        {"at least one class"});
}

TEST(LinearCrossEntropy, cpu_launchers_overwrite_poisoned_outputs) {
  Tensor h = random_tensor({300, 5}, 20), w = random_tensor({5000, 5}, 21);
  const std::vector<Tensor> out = launch_on_poisoned_outputs(Device::CPU, h, w, targets_with_ignored(300, 5000), 4096);
  for (int k = 0; k < 5; ++k) EXPECT_LT(max_abs(out[k].to_f32_vector()), INFINITY) << kLauncherOutputs[k];
}

TEST(LinearCrossEntropy, the_cpu_ignores_the_matmul_precision) {
  Tensor h = random_tensor({20, 8}, 10), w = random_tensor({30, 8}, 11);
  Tensor targets = targets_with_ignored(20, 30);
  LossAndGrads fp32 = run(true, 16, h, w, targets, 1.0f);
  MatmulPrecisionGuard bf16(MatmulPrecision::BF16);
  LossAndGrads under_bf16 = run(true, 16, h, w, targets, 1.0f);
  EXPECT_EQ(under_bf16.loss, fp32.loss);
  EXPECT_EQ(under_bf16.dh, fp32.dh);
  EXPECT_EQ(under_bf16.dw, fp32.dw);
}

TEST(MatmulPrecision, parses_the_three_names_and_rejects_others) {
  for (MatmulPrecision p : {MatmulPrecision::FP32, MatmulPrecision::TF32, MatmulPrecision::BF16})
    EXPECT_EQ(parse_matmul_precision(matmul_precision_name(p)), p);
  for (const char* bad : {"fp16", "BF16", "", "highest"})
    testkit::expect_error([&] { parse_matmul_precision(bad); },
                          {"unknown matmul precision '" + std::string(bad) + "'", "fp32, tf32 or bf16"});
}

TEST(MatmulPrecision, defaults_to_fp32_and_the_guard_restores_it) {
  EXPECT_EQ(matmul_precision(), MatmulPrecision::FP32);
  {
    MatmulPrecisionGuard tf32(MatmulPrecision::TF32);
    EXPECT_EQ(matmul_precision(), MatmulPrecision::TF32);
    {
      MatmulPrecisionGuard bf16(MatmulPrecision::BF16);
      EXPECT_EQ(matmul_precision(), MatmulPrecision::BF16);
    }
    EXPECT_EQ(matmul_precision(), MatmulPrecision::TF32);
  }
  EXPECT_EQ(matmul_precision(), MatmulPrecision::FP32);
}

// ---- GPU ----

namespace {

// GPU at `precision` against the CPU fp32 reference, on rows with ignored targets. The tiles are 8 Mi
// logits: rows * round_up(chunk, 8) above that spreads the rows over several blocks.
void expect_gpu_matches_cpu(int64_t rows, int64_t d, int64_t classes, int64_t chunk, float scale,
                            MatmulPrecision precision, double loss_tolerance, double grad_tolerance) {
  Tensor h = random_tensor({rows, d}, 7 + rows), w = random_tensor({classes, d}, 8 + classes, 0.2f);
  Tensor targets = targets_with_ignored(rows, classes);
  LossAndGrads cpu = run(true, chunk, h, w, targets, scale);
  MatmulPrecisionGuard guard(precision);
  LossAndGrads gpu = run(true, chunk, h, w, targets, scale, Device::CUDA);
  const char* name = matmul_precision_name(precision);
  EXPECT_NEAR(gpu.loss, cpu.loss, loss_tolerance * std::fabs(cpu.loss)) << name;
  EXPECT_LT(relative_error(gpu.dh, cpu.dh), grad_tolerance) << name;
  EXPECT_LT(relative_error(gpu.dw, cpu.dw), grad_tolerance) << name;
}

}  // namespace

TEST(LinearCrossEntropyGpu, matches_cpu_N1000_d64_V3001_chunk512) {
  SKIP_WITHOUT_GPU();
  expect_gpu_matches_cpu(1000, 64, 3001, 512, 1.0f, MatmulPrecision::FP32, 1e-4, 1e-4);
}

// 3 row blocks of 6672, 6672 and 6667 rows; chunks of 999, 999 and 505 items; d = 50 is padded to 56
// in the bf16 copies.
TEST(LinearCrossEntropyGpu, fp32_matches_cpu_across_row_blocks_N20011_d50_V2503_chunk999) {
  SKIP_WITHOUT_GPU();
  expect_gpu_matches_cpu(20011, 50, 2503, 999, 0.7f, MatmulPrecision::FP32, 1e-4, 1e-4);
}

TEST(LinearCrossEntropyGpu, tf32_matches_cpu_across_row_blocks_N20011_d50_V2503_chunk999) {
  SKIP_WITHOUT_GPU();
  expect_gpu_matches_cpu(20011, 50, 2503, 999, 0.7f, MatmulPrecision::TF32, 1e-2, 3e-2);
}

TEST(LinearCrossEntropyGpu, bf16_matches_cpu_across_row_blocks_N20011_d50_V2503_chunk999) {
  SKIP_WITHOUT_GPU();
  expect_gpu_matches_cpu(20011, 50, 2503, 999, 0.7f, MatmulPrecision::BF16, 1e-2, 3e-2);
}

TEST(LinearCrossEntropyGpu, bf16_matches_cpu_N777_d64_V3707_one_chunk) {
  SKIP_WITHOUT_GPU();
  expect_gpu_matches_cpu(777, 64, 3707, 4096, 1.0f, MatmulPrecision::BF16, 1e-2, 3e-2);
}

// One class: softmax is 1 everywhere, so the loss and both gradients are 0 up to rounding.
TEST(LinearCrossEntropyGpu, a_single_class_gives_zero_loss_and_gradients_at_every_precision) {
  SKIP_WITHOUT_GPU();
  Tensor h = random_tensor({45, 9}, 12), w = random_tensor({1, 9}, 13);
  Tensor targets = Tensor::from_i64(std::vector<int64_t>(45, 0), {45});
  for (MatmulPrecision p : {MatmulPrecision::FP32, MatmulPrecision::TF32, MatmulPrecision::BF16}) {
    MatmulPrecisionGuard guard(p);
    LossAndGrads gpu = run(true, 4096, h, w, targets, 1.0f, Device::CUDA);
    EXPECT_NEAR(gpu.loss, 0.0f, 1e-5) << matmul_precision_name(p);
    EXPECT_LT(max_abs(gpu.dh), 1e-6) << matmul_precision_name(p);
    EXPECT_LT(max_abs(gpu.dw), 1e-6) << matmul_precision_name(p);
  }
}

TEST(LinearCrossEntropyGpu, all_targets_ignored_gives_zero_loss_and_gradients_at_every_precision) {
  SKIP_WITHOUT_GPU();
  Tensor h = random_tensor({33, 20}, 14), w = random_tensor({70, 20}, 15);
  Tensor targets = Tensor::from_i64(std::vector<int64_t>(33, -1), {33});
  for (MatmulPrecision p : {MatmulPrecision::FP32, MatmulPrecision::TF32, MatmulPrecision::BF16}) {
    MatmulPrecisionGuard guard(p);
    LossAndGrads gpu = run(true, 32, h, w, targets, 1.0f, Device::CUDA);
    EXPECT_EQ(gpu.loss, 0.0f) << matmul_precision_name(p);
    EXPECT_EQ(max_abs(gpu.dh), 0.0) << matmul_precision_name(p);
    EXPECT_EQ(max_abs(gpu.dw), 0.0) << matmul_precision_name(p);
  }
}


// Two row blocks, an odd last chunk and d not a multiple of 8: the launchers still write every
// element of their outputs (NaN going in), equal to the CPU's.
TEST(LinearCrossEntropyGpu, launchers_overwrite_poisoned_outputs) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 9000, d = 13, classes = 1201, chunk = 1000;
  Tensor h = random_tensor({rows, d}, 16), w = random_tensor({classes, d}, 17, 0.3f);
  Tensor targets = targets_with_ignored(rows, classes);
  const std::vector<Tensor> cpu = launch_on_poisoned_outputs(Device::CPU, h, w, targets, chunk);
  for (MatmulPrecision p : {MatmulPrecision::FP32, MatmulPrecision::BF16}) {
    MatmulPrecisionGuard guard(p);
    const std::vector<Tensor> gpu = launch_on_poisoned_outputs(Device::CUDA, h, w, targets, chunk);
    for (int k = 0; k < 5; ++k)
      EXPECT_LT(relative_error(gpu[k], cpu[k]), p == MatmulPrecision::FP32 ? 1e-4 : 3e-2)
          << kLauncherOutputs[k] << " at " << matmul_precision_name(p);
  }
}

// The CUDA gemm launcher honours the setting: fp32 stays exact, TF32 and BF16 round (a little).
TEST(MatmulPrecisionGpu, linear_follows_the_setting) {
  SKIP_WITHOUT_GPU();
  Tensor x = random_tensor({512, 384}, 18), w = random_tensor({256, 384}, 19);
  const std::vector<float> cpu = ops::linear(x, w).to_f32_vector();
  struct Case {
    MatmulPrecision precision;
    double at_least, at_most;
  };
  for (Case c : {Case{MatmulPrecision::FP32, 0.0, 1e-5}, Case{MatmulPrecision::TF32, 1e-5, 5e-3},
                 Case{MatmulPrecision::BF16, 1e-4, 2e-2}}) {
    MatmulPrecisionGuard guard(c.precision);
    const double error = relative_error(ops::linear(x.to(Device::CUDA), w.to(Device::CUDA)).to_f32_vector(), cpu);
    EXPECT_GE(error, c.at_least) << matmul_precision_name(c.precision) << ": the setting had no effect";
    EXPECT_LT(error, c.at_most) << matmul_precision_name(c.precision);
  }
}
