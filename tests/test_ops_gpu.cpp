// GPU vs CPU parity through the op API: forward values and every input gradient, on fresh random
// inputs. Skips with a clear message where no GPU is visible.
#include "test_util.h"

using namespace muonrec;
using muonrec::testkit::random_tensor;
using muonrec::testkit::relative_error;

namespace {

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Runs f on CPU copies and on GPU copies of `inputs`, backpropagates the same random cotangent and
// compares outputs and gradients. Inputs of dtype f32 get requires_grad.
void expect_gpu_matches_cpu(const OpFn& f, const std::vector<Tensor>& inputs, double tolerance) {
  auto run = [&](Device device, Tensor& out, std::vector<Tensor>& grads) {
    std::vector<Tensor> on_device;
    for (const Tensor& t : inputs) {
      Tensor c = t.clone().to(device);
      if (t.dtype() == DType::F32) c.set_requires_grad(true);
      on_device.push_back(c);
    }
    out = f(on_device);
    Tensor cotangent = random_tensor(out.shape(), 77, 1.0f, device);
    backward(ops::sum(ops::mul(out, cotangent)));
    for (const Tensor& t : on_device) grads.push_back(t.requires_grad() ? t.grad() : Tensor());
  };
  Tensor cpu_out, gpu_out;
  std::vector<Tensor> cpu_grads, gpu_grads;
  run(Device::CPU, cpu_out, cpu_grads);
  run(Device::CUDA, gpu_out, gpu_grads);
  EXPECT_LT(relative_error(gpu_out, cpu_out), tolerance) << "forward";
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!cpu_grads[k].defined()) continue;
    ASSERT_TRUE(gpu_grads[k].defined()) << "GPU gave no gradient for input " << k;
    EXPECT_LT(relative_error(gpu_grads[k], cpu_grads[k]), tolerance) << "gradient of input " << k;
  }
}

Tensor ids_tensor(int64_t n, int64_t rows, uint64_t seed) {
  PhiloxGenerator gen(seed);
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = static_cast<int64_t>(gen.uniform_u64() % static_cast<uint64_t>(rows));
  return Tensor::from_i64(ids, {n});
}

}  // namespace

TEST(OpsGpuParity, elementwise_and_activations_f32_1000x37) {
  SKIP_WITHOUT_GPU();
  Tensor a = random_tensor({1000, 37}, 1), b = random_tensor({1000, 37}, 2), c = random_tensor({37}, 3);
  expect_gpu_matches_cpu([](auto& in) { return ops::add(in[0], in[1]); }, {a, c}, 1e-6);
  expect_gpu_matches_cpu([](auto& in) { return ops::mul(in[0], in[1]); }, {a, b}, 1e-6);
  expect_gpu_matches_cpu([](auto& in) { return ops::gelu(in[0]); }, {a}, 1e-5);
  expect_gpu_matches_cpu([](auto& in) { return ops::silu(in[0]); }, {a}, 1e-5);
  expect_gpu_matches_cpu([](auto& in) { return ops::relu(in[0]); }, {a}, 1e-6);
  expect_gpu_matches_cpu([](auto& in) { return ops::mean(in[0]); }, {a}, 1e-5);
}

TEST(OpsGpuParity, dropout_mask_identical_on_both_devices) {
  SKIP_WITHOUT_GPU();
  Tensor x = random_tensor({3001}, 4);
  PhiloxGenerator g_cpu(11), g_gpu(11);
  EXPECT_EQ(ops::dropout(x, 0.2f, g_cpu, true).to_f32_vector(),
            ops::dropout(x.to(Device::CUDA), 0.2f, g_gpu, true).to_f32_vector());
}

TEST(OpsGpuParity, linear_and_matmul_f32) {
  SKIP_WITHOUT_GPU();
  expect_gpu_matches_cpu([](auto& in) { return ops::linear(in[0], in[1], in[2]); },
                         {random_tensor({3, 67, 48}, 5), random_tensor({31, 48}, 6), random_tensor({31}, 7)}, 1e-5);
  expect_gpu_matches_cpu([](auto& in) { return ops::matmul(in[0], in[1]); },
                         {random_tensor({65, 33}, 8), random_tensor({33, 17}, 9)}, 1e-5);
}

TEST(OpsGpuParity, layer_norm_and_l2_normalize) {
  SKIP_WITHOUT_GPU();
  expect_gpu_matches_cpu([](auto& in) { return ops::layer_norm(in[0], in[1], in[2], 1e-5f); },
                         {random_tensor({301, 64}, 10, 2.0f), random_tensor({64}, 11), random_tensor({64}, 12)}, 1e-5);
  expect_gpu_matches_cpu([](auto& in) { return ops::layer_norm(in[0], Tensor(), Tensor(), 1e-6f); },
                         {random_tensor({77, 50}, 13)}, 1e-5);
  expect_gpu_matches_cpu([](auto& in) { return ops::l2_normalize(in[0], 1e-6f); }, {random_tensor({129, 24}, 14)},
                         1e-5);
}

TEST(OpsGpuParity, embedding_with_repeats) {
  SKIP_WITHOUT_GPU();
  Tensor ids = ids_tensor(5000, 97, 15);
  expect_gpu_matches_cpu([](auto& in) { return ops::embedding(in[0], in[1]); }, {random_tensor({97, 40}, 16), ids},
                         1e-6);
}

TEST(OpsGpuParity, concat_rows) {
  SKIP_WITHOUT_GPU();
  expect_gpu_matches_cpu([](auto& in) { return ops::concat_rows(in[0], in[1]); },
                         {random_tensor({7, 3, 11}, 18), random_tensor({5, 3, 11}, 19)}, 1e-7);
}

TEST(OpsGpuParity, causal_attention_padded_T37_H2_D24) {
  SKIP_WITHOUT_GPU();
  const int64_t B = 5, T = 37, d = 48;
  std::vector<float> valid(B * T, 1.0f);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < b * 7; ++t) valid[b * T + t] = 0.0f;
  expect_gpu_matches_cpu([](auto& in) { return ops::causal_attention(in[0], in[1].reshape({5, 37}), 2); },
                         {random_tensor({B, T, 3 * d}, 17), Tensor::from_f32(valid, {B * T})}, 1e-4);
}

TEST(OpsGpuParity, bidirectional_attention_padded_T37_H2_D24) {
  SKIP_WITHOUT_GPU();
  const int64_t B = 5, T = 37, d = 48;
  std::vector<float> valid(B * T, 1.0f);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < b * 7; ++t) valid[b * T + t] = 0.0f;
  expect_gpu_matches_cpu([](auto& in) { return ops::attention(in[0], in[1].reshape({5, 37}), 2, /*causal=*/false); },
                         {random_tensor({B, T, 3 * d}, 19), Tensor::from_f32(valid, {B * T})}, 1e-4);
}

TEST(OpsGpuParity, attention_T200_H2_D50_padded_and_all_padding_rows) {
  SKIP_WITHOUT_GPU();
  // The benchmark length with a head dim that is not a multiple of 4; row b has 60*b padded
  // positions, so row 3 (180) leaves whole key tiles of padding, and row 4 is all padding.
  const int64_t B = 5, T = 200, d = 100;
  std::vector<float> valid(B * T, 1.0f);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < std::min(b * 60, T); ++t) valid[b * T + t] = 0.0f;
  for (bool causal : {true, false}) {
    expect_gpu_matches_cpu(
        [causal](auto& in) { return ops::attention(in[0], in[1].reshape({5, 200}), 2, causal); },
        {random_tensor({B, T, 3 * d}, causal ? 22 : 23), Tensor::from_f32(valid, {B * T})}, 1e-4);
  }
}

TEST(OpsGpuParity, attention_continued_S3_of_T40_contexts_H2_D50) {
  SKIP_WITHOUT_GPU();
  // Evaluation only (no gradient): forward values of 12 rows continuing 4 padded contexts.
  const int64_t R = 4, T = 40, N = 12, S = 3, d = 100;
  std::vector<float> valid(R * T, 1.0f);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t t = 0; t < r * 13; ++t) valid[r * T + t] = 0.0f;
  std::vector<int64_t> context_rows(N);
  for (int64_t n = 0; n < N; ++n) context_rows[n] = (n * 5) % R;
  Tensor context_qkv = random_tensor({R, T, 3 * d}, 24), qkv_new = random_tensor({N, S, 3 * d}, 25);
  Tensor context_valid = Tensor::from_f32(valid, {R, T});
  Tensor cpu = ops::attention_continued(qkv_new, context_qkv, context_valid, context_rows, 2);
  Tensor gpu = ops::attention_continued(qkv_new.to(Device::CUDA), context_qkv.to(Device::CUDA),
                                        context_valid.to(Device::CUDA), context_rows, 2);
  EXPECT_LT(relative_error(gpu, cpu), 1e-5);
}

TEST(OpsGpuParity, row_dot_300_rows_of_129_candidates_d72) {
  SKIP_WITHOUT_GPU();
  // 129 = 1 + 128 negatives; d = 72 is not a multiple of the warp width.
  expect_gpu_matches_cpu([](auto& in) { return ops::row_dot(in[0], in[1]); },
                         {random_tensor({300, 72}, 20), random_tensor({300, 129, 72}, 21)}, 1e-5);
}

TEST(OpsGpuParity, cross_entropy_with_ignored_rows) {
  SKIP_WITHOUT_GPU();
  std::vector<int64_t> targets(300);
  for (size_t i = 0; i < targets.size(); ++i) targets[i] = i % 5 == 0 ? -1 : static_cast<int64_t>((i * 37) % 1001);
  expect_gpu_matches_cpu([](auto& in) { return ops::cross_entropy(in[0], in[1]); },
                         {random_tensor({300, 1001}, 18, 3.0f), Tensor::from_i64(targets, {300})}, 1e-4);
}
