// GPU-vs-CPU parity of the CUDA kernel launchers (kernels/cuda) against the CPU references
// (kernels/cpu), below the op layer: fresh random inputs, sizes that are not multiples of any block
// size, outputs poisoned with NaN bytes before each launch so that an element a kernel forgets to
// write fails the check. Skips with a clear message where no GPU is visible.
#include <gtest/gtest.h>

#ifdef MUONREC_WITH_CUDA

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "muonrec/engine/allocator.h"
#include "muonrec/engine/cuda_check.h"
#include "muonrec/engine/device.h"
#include "muonrec/engine/tensor.h"
#include "muonrec/kernels/cpu/activation.h"
#include "muonrec/kernels/cpu/attention.h"
#include "muonrec/kernels/cpu/elementwise.h"
#include "muonrec/kernels/cpu/embedding.h"
#include "muonrec/kernels/cpu/loss.h"
#include "muonrec/kernels/cpu/matmul.h"
#include "muonrec/kernels/cpu/norm.h"
#include "muonrec/kernels/cpu/optimizer.h"
#include "muonrec/kernels/cpu/reduce.h"
#include "muonrec/kernels/cpu/row_dot.h"
#include "muonrec/kernels/cuda/activation.h"
#include "muonrec/kernels/cuda/attention.h"
#include "muonrec/kernels/cuda/elementwise.h"
#include "muonrec/kernels/cuda/embedding.h"
#include "muonrec/kernels/cuda/loss.h"
#include "muonrec/kernels/cuda/matmul.h"
#include "muonrec/kernels/cuda/norm.h"
#include "muonrec/kernels/cuda/optimizer.h"
#include "muonrec/kernels/cuda/reduce.h"
#include "muonrec/kernels/cuda/row_dot.h"

namespace {

using muonrec::Device;
using muonrec::DType;
using muonrec::Tensor;
namespace cpu = muonrec::kernels::cpu;
namespace gpu = muonrec::kernels::cuda;
using muonrec::kernels::Activation;

#define SKIP_WITHOUT_GPU() \
  if (!muonrec::cuda_available()) GTEST_SKIP() << "no GPU: " << muonrec::cuda_unavailable_reason()

// Tolerances on ||gpu - cpu|| / ||cpu|| (see STYLE.md): pointwise float formulas agree to a few
// ulps; products and reductions sum in another order.
constexpr double kElementwiseTol = 1e-5;
constexpr double kReductionTol = 1e-4;

template <typename T>
DType dtype_of();
template <>
DType dtype_of<float>() { return DType::F32; }
template <>
DType dtype_of<uint16_t>() { return DType::BF16; }
template <>
DType dtype_of<int32_t>() { return DType::I32; }
template <>
DType dtype_of<int64_t>() { return DType::I64; }

std::vector<float> randn(size_t n, std::mt19937& gen, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(n);
  for (float& v : values) v = normal(gen);
  return values;
}

std::vector<int64_t> random_ids(size_t n, int64_t rows, std::mt19937& gen) {
  std::uniform_int_distribution<int64_t> pick(0, rows - 1);
  std::vector<int64_t> ids(n);
  for (int64_t& id : ids) id = pick(gen);
  return ids;
}

// A device buffer with the host values.
template <typename T>
Tensor upload(const std::vector<T>& host) {
  Tensor t = Tensor::empty({static_cast<int64_t>(host.size())}, dtype_of<T>(), Device::CUDA);
  muonrec::copy_bytes(t.raw_data(), Device::CUDA, host.data(), Device::CPU, host.size() * sizeof(T));
  return t;
}

// A device buffer of n elements, every byte 0xFF: NaN as f32/bf16, -1 as integers.
template <typename T>
Tensor poisoned(size_t n) {
  Tensor t = Tensor::empty({static_cast<int64_t>(n)}, dtype_of<T>(), Device::CUDA);
  muonrec::fill_bytes(t.raw_data(), Device::CUDA, 0xFF, t.nbytes());
  return t;
}

template <typename T>
std::vector<T> download(const Tensor& t) {
  CUDA_CHECK(cudaStreamSynchronize(muonrec::current_stream()));
  CUDA_CHECK(cudaGetLastError());
  std::vector<T> host(static_cast<size_t>(t.numel()));
  muonrec::copy_bytes(host.data(), Device::CPU, t.raw_data(), Device::CUDA, host.size() * sizeof(T));
  return host;
}

template <typename T>
T* dev(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

cudaStream_t stream() { return muonrec::current_stream(); }

// Every GPU element finite (the poison was overwritten) and ||gpu - cpu|| / ||cpu|| < tolerance.
void expect_close(const std::vector<float>& gpu_values, const std::vector<float>& cpu_values, double tolerance,
                  const std::string& what) {
  ASSERT_EQ(gpu_values.size(), cpu_values.size()) << what;
  double diff = 0.0, ref = 0.0;
  size_t not_finite = 0, first_bad = 0;
  for (size_t i = 0; i < gpu_values.size(); ++i) {
    if (!std::isfinite(gpu_values[i])) {
      if (not_finite++ == 0) first_bad = i;
      continue;
    }
    diff += (static_cast<double>(gpu_values[i]) - cpu_values[i]) * (static_cast<double>(gpu_values[i]) - cpu_values[i]);
    ref += static_cast<double>(cpu_values[i]) * cpu_values[i];
  }
  EXPECT_EQ(not_finite, 0u) << what << ": " << not_finite << " elements not finite (unwritten?), first at "
                            << first_bad;
  const double error = std::sqrt(diff) / std::max(std::sqrt(ref), 1e-30);
  EXPECT_LT(error, tolerance) << what << ": relative error " << error;
}

// Bit-for-bit equality (NaN payloads included).
template <typename T>
void expect_bitwise(const std::vector<T>& gpu_values, const std::vector<T>& cpu_values, const std::string& what) {
  ASSERT_EQ(gpu_values.size(), cpu_values.size()) << what;
  size_t mismatches = 0, first = 0;
  for (size_t i = 0; i < gpu_values.size(); ++i) {
    if (std::memcmp(&gpu_values[i], &cpu_values[i], sizeof(T)) != 0 && mismatches++ == 0) first = i;
  }
  EXPECT_EQ(mismatches, 0u) << what << ": " << mismatches << " elements differ, first at " << first;
}

// ---------------------------------------------------------------------------------------------

TEST(KernelsGpu, elementwise_fp32_37x53) {
  SKIP_WITHOUT_GPU();
  std::mt19937 gen(101);
  const int64_t rows = 37, cols = 53, n = rows * cols;
  auto a = randn(n, gen), b = randn(n, gen), bias = randn(cols, gen), row_factor = randn(rows, gen);
  Tensor da = upload(a), db = upload(b), dbias = upload(bias), drow = upload(row_factor);
  std::vector<float> expected(n);

  Tensor out = poisoned<float>(n);
  gpu::add_forward(dev<float>(da), dev<float>(dbias), dev<float>(out), n, cols, stream());
  cpu::add_forward(a.data(), bias.data(), expected.data(), n, cols);
  expect_close(download<float>(out), expected, kElementwiseTol, "add_forward broadcast");

  out = poisoned<float>(n);
  gpu::add_forward(dev<float>(da), dev<float>(db), dev<float>(out), n, n, stream());
  cpu::add_forward(a.data(), b.data(), expected.data(), n, n);
  expect_close(download<float>(out), expected, kElementwiseTol, "add_forward same shape");

  // In place (out aliases a), as the linear layer adds its bias.
  Tensor inplace = upload(a);
  gpu::add_forward(dev<float>(inplace), dev<float>(dbias), dev<float>(inplace), n, cols, stream());
  cpu::add_forward(a.data(), bias.data(), expected.data(), n, cols);
  expect_close(download<float>(inplace), expected, kElementwiseTol, "add_forward in place");

  out = poisoned<float>(n);
  gpu::mul_forward(dev<float>(da), dev<float>(db), dev<float>(out), n, stream());
  cpu::mul_forward(a.data(), b.data(), expected.data(), n);
  expect_close(download<float>(out), expected, kElementwiseTol, "mul_forward");

  out = poisoned<float>(n);
  gpu::scale_forward(dev<float>(da), -1.7f, dev<float>(out), n, stream());
  cpu::scale_forward(a.data(), -1.7f, expected.data(), n);
  expect_close(download<float>(out), expected, kElementwiseTol, "scale_forward");

  out = poisoned<float>(n);
  gpu::scale_rows_forward(dev<float>(da), dev<float>(drow), dev<float>(out), rows, cols, stream());
  cpu::scale_rows_forward(a.data(), row_factor.data(), expected.data(), rows, cols);
  expect_close(download<float>(out), expected, kElementwiseTol, "scale_rows_forward");
}

TEST(KernelsGpu, dropout_fp32_4099) {
  SKIP_WITHOUT_GPU();
  std::mt19937 gen(102);
  const int64_t n = 4099;
  auto x = randn(n, gen);
  Tensor dx = upload(x);
  for (float p : {0.1f, 0.5f}) {
    for (uint64_t offset : {uint64_t{0}, uint64_t{12345}}) {
      const uint64_t seed = 0x5eedULL + static_cast<uint64_t>(p * 100);
      Tensor out = poisoned<float>(n);
      gpu::dropout_forward(dev<float>(dx), dev<float>(out), n, p, seed, offset, stream());
      std::vector<float> expected(n);
      cpu::dropout_forward(x.data(), expected.data(), n, p, seed, offset);
      expect_bitwise(download<float>(out), expected,
                     "dropout p=" + std::to_string(p) + " offset=" + std::to_string(offset));
    }
  }
}

TEST(KernelsGpu, cast_4099) {
  SKIP_WITHOUT_GPU();
  std::mt19937 gen(103);
  const int64_t n = 4099;
  // Random normals at several magnitudes, plus the special cases of the rounding: NaN, infinities,
  // signed zero, exact ties (lower half 0x8000) on even and odd bf16 values, and overflow to inf.
  auto x = randn(n, gen);
  std::uniform_real_distribution<float> exponent(-30.0f, 30.0f);
  for (int64_t i = 0; i < n; i += 3) x[i] *= std::exp2(exponent(gen));
  const uint32_t specials[] = {0x7fc00000u, 0xffc00001u, 0x7f800001u, 0x7f800000u, 0xff800000u, 0x80000000u,
                               0x3f808000u, 0x3f818000u, 0x7f7fffffu, 0x00000001u, 0x807fffffu};
  for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); ++k) std::memcpy(&x[k * 7], &specials[k], 4);
  Tensor dx = upload(x);

  Tensor bf16 = poisoned<uint16_t>(n);
  gpu::cast_f32_to_bf16(dev<float>(dx), dev<uint16_t>(bf16), n, stream());
  std::vector<uint16_t> expected_bf16(n);
  cpu::cast_f32_to_bf16(x.data(), expected_bf16.data(), n);
  expect_bitwise(download<uint16_t>(bf16), expected_bf16, "cast_f32_to_bf16");

  std::uniform_int_distribution<uint32_t> bits(0, 0xffff);
  std::vector<uint16_t> halves(n);
  for (uint16_t& h : halves) h = static_cast<uint16_t>(bits(gen));
  Tensor dhalves = upload(halves);
  Tensor f32 = poisoned<float>(n);
  gpu::cast_bf16_to_f32(dev<uint16_t>(dhalves), dev<float>(f32), n, stream());
  std::vector<float> expected_f32(n);
  cpu::cast_bf16_to_f32(halves.data(), expected_f32.data(), n);
  expect_bitwise(download<float>(f32), expected_f32, "cast_bf16_to_f32");

  std::uniform_int_distribution<int32_t> i32(std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max());
  std::vector<int32_t> small(n);
  for (int32_t& v : small) v = i32(gen);
  Tensor dsmall = upload(small);
  Tensor wide = poisoned<int64_t>(n);
  gpu::cast_i32_to_i64(dev<int32_t>(dsmall), dev<int64_t>(wide), n, stream());
  std::vector<int64_t> expected_wide(n);
  cpu::cast_i32_to_i64(small.data(), expected_wide.data(), n);
  expect_bitwise(download<int64_t>(wide), expected_wide, "cast_i32_to_i64");

  std::uniform_int_distribution<int64_t> i64(-(int64_t{1} << 40), int64_t{1} << 40);
  std::vector<int64_t> large(n);
  for (int64_t& v : large) v = i64(gen);
  Tensor dlarge = upload(large);
  Tensor narrow = poisoned<int32_t>(n);
  gpu::cast_i64_to_i32(dev<int64_t>(dlarge), dev<int32_t>(narrow), n, stream());
  std::vector<int32_t> expected_narrow(n);
  cpu::cast_i64_to_i32(large.data(), expected_narrow.data(), n);
  expect_bitwise(download<int32_t>(narrow), expected_narrow, "cast_i64_to_i32");
}

TEST(KernelsGpu, activation_fp32_3001) {
  SKIP_WITHOUT_GPU();
  std::mt19937 gen(104);
  const int64_t n = 3001;
  auto x = randn(n, gen, 2.0f), dy = randn(n, gen);
  Tensor dx_in = upload(x), ddy = upload(dy);
  const std::pair<Activation, const char*> kinds[] = {
      {Activation::GELU, "gelu"}, {Activation::SILU, "silu"}, {Activation::RELU, "relu"}};
  for (const auto& [kind, name] : kinds) {
    Tensor y = poisoned<float>(n);
    gpu::activation_forward(kind, dev<float>(dx_in), dev<float>(y), n, stream());
    std::vector<float> expected(n);
    cpu::activation_forward(kind, x.data(), expected.data(), n);
    expect_close(download<float>(y), expected, kElementwiseTol, std::string(name) + " forward");

    Tensor dx = poisoned<float>(n);
    gpu::activation_backward(kind, dev<float>(dx_in), dev<float>(ddy), dev<float>(dx), n, stream());
    cpu::activation_backward(kind, x.data(), dy.data(), expected.data(), n);
    expect_close(download<float>(dx), expected, kElementwiseTol, std::string(name) + " backward");
  }
}

TEST(KernelsGpu, gemm_fp32_67x45x131) {
  SKIP_WITHOUT_GPU();
  std::mt19937 gen(105);
  const int64_t m = 67, n = 45, k = 131;
  for (bool trans_a : {false, true}) {
    for (bool trans_b : {false, true}) {
      const std::string what = std::string("gemm trans_a=") + (trans_a ? "1" : "0") + " trans_b=" + (trans_b ? "1" : "0");
      auto a = randn(m * k, gen), b = randn(k * n, gen), c0 = randn(m * n, gen);
      Tensor da = upload(a), db = upload(b);
      // beta = 0: C is write-only, so a poisoned C must be fully overwritten.
      Tensor dc = poisoned<float>(m * n);
      gpu::gemm(trans_a, trans_b, m, n, k, 0.7f, dev<float>(da), dev<float>(db), 0.0f, dev<float>(dc), stream());
      std::vector<float> expected(m * n, 0.0f);
      cpu::gemm(trans_a, trans_b, m, n, k, 0.7f, a.data(), b.data(), 0.0f, expected.data());
      expect_close(download<float>(dc), expected, kReductionTol, what + " beta=0");
      // beta != 0 accumulates into C.
      dc = upload(c0);
      gpu::gemm(trans_a, trans_b, m, n, k, -1.3f, dev<float>(da), dev<float>(db), 0.5f, dev<float>(dc), stream());
      expected = c0;
      cpu::gemm(trans_a, trans_b, m, n, k, -1.3f, a.data(), b.data(), 0.5f, expected.data());
      expect_close(download<float>(dc), expected, kReductionTol, what + " beta=0.5");
    }
  }
}

TEST(KernelsGpu, layer_norm_fp32_1003x48) {
  SKIP_WITHOUT_GPU();
  std::mt19937 gen(106);
  const int64_t rows = 1003, cols = 48, n = rows * cols;
  const float eps = 1e-5f;
  auto x = randn(n, gen, 3.0f), weight = randn(cols, gen), bias = randn(cols, gen), dy = randn(n, gen);
  for (int64_t i = 0; i < n; ++i) x[i] += 0.5f;  // a non-zero mean
  Tensor dxin = upload(x), dweight_in = upload(weight), dbias_in = upload(bias), ddy = upload(dy);
  for (bool affine : {true, false}) {
    const std::string tag = affine ? " (affine)" : " (no affine)";
    const float* w_host = affine ? weight.data() : nullptr;
    const float* b_host = affine ? bias.data() : nullptr;
    const float* w_dev = affine ? dev<float>(dweight_in) : nullptr;
    const float* b_dev = affine ? dev<float>(dbias_in) : nullptr;

    Tensor y = poisoned<float>(n), mean = poisoned<float>(rows), rstd = poisoned<float>(rows);
    gpu::layer_norm_forward(dev<float>(dxin), w_dev, b_dev, dev<float>(y), dev<float>(mean), dev<float>(rstd), rows,
                            cols, eps, stream());
    std::vector<float> y_ref(n), mean_ref(rows), rstd_ref(rows);
    cpu::layer_norm_forward(x.data(), w_host, b_host, y_ref.data(), mean_ref.data(), rstd_ref.data(), rows, cols,
                            eps);
    expect_close(download<float>(y), y_ref, kReductionTol, "layer_norm_forward y" + tag);
    expect_close(download<float>(mean), mean_ref, kReductionTol, "layer_norm_forward mean" + tag);
    expect_close(download<float>(rstd), rstd_ref, kReductionTol, "layer_norm_forward rstd" + tag);

    // The backward gets the reference's saved statistics, so only the backward is compared.
    Tensor dmean = upload(mean_ref), drstd = upload(rstd_ref);
    Tensor dx = poisoned<float>(n), dw = poisoned<float>(cols), db = poisoned<float>(cols);
    gpu::layer_norm_backward(dev<float>(dxin), w_dev, dev<float>(dmean), dev<float>(drstd), dev<float>(ddy),
                             dev<float>(dx), affine ? dev<float>(dw) : nullptr, affine ? dev<float>(db) : nullptr,
                             rows, cols, stream());
    std::vector<float> dx_ref(n), dw_ref(cols), db_ref(cols);
    cpu::layer_norm_backward(x.data(), w_host, mean_ref.data(), rstd_ref.data(), dy.data(), dx_ref.data(),
                             affine ? dw_ref.data() : nullptr, affine ? db_ref.data() : nullptr, rows, cols);
    expect_close(download<float>(dx), dx_ref, kReductionTol, "layer_norm_backward dx" + tag);
    if (affine) {
      expect_close(download<float>(dw), dw_ref, kReductionTol, "layer_norm_backward dweight");
      expect_close(download<float>(db), db_ref, kReductionTol, "layer_norm_backward dbias");
    }
  }
  // dweight alone (dbias null).
  std::vector<float> mean_ref(rows), rstd_ref(rows), y_ref(n);
  cpu::layer_norm_forward(x.data(), weight.data(), bias.data(), y_ref.data(), mean_ref.data(), rstd_ref.data(), rows,
                          cols, eps);
  Tensor dmean = upload(mean_ref), drstd = upload(rstd_ref);
  Tensor dx = poisoned<float>(n), dw = poisoned<float>(cols);
  gpu::layer_norm_backward(dev<float>(dxin), dev<float>(dweight_in), dev<float>(dmean), dev<float>(drstd),
                           dev<float>(ddy), dev<float>(dx), dev<float>(dw), nullptr, rows, cols, stream());
  std::vector<float> dx_ref(n), dw_ref(cols);
  cpu::layer_norm_backward(x.data(), weight.data(), mean_ref.data(), rstd_ref.data(), dy.data(), dx_ref.data(),
                           dw_ref.data(), nullptr, rows, cols);
  expect_close(download<float>(dw), dw_ref, kReductionTol, "layer_norm_backward dweight only");
}

TEST(KernelsGpu, l2_normalize_fp32_131x33) {
  SKIP_WITHOUT_GPU();
  std::mt19937 gen(107);
  const int64_t rows = 131, cols = 33, n = rows * cols;
  const float eps = 1e-3f;
  auto x = randn(n, gen), dy = randn(n, gen);
  // A few tiny (non-zero) rows put the eps clamp to work in both directions.
  for (int64_t r = 0; r < rows; r += 17)
    for (int64_t c = 0; c < cols; ++c) x[r * cols + c] *= 1e-5f;
  Tensor dxin = upload(x), ddy = upload(dy);
  Tensor y = poisoned<float>(n), norm = poisoned<float>(rows);
  gpu::l2_normalize_forward(dev<float>(dxin), dev<float>(y), dev<float>(norm), rows, cols, eps, stream());
  std::vector<float> y_ref(n), norm_ref(rows);
  cpu::l2_normalize_forward(x.data(), y_ref.data(), norm_ref.data(), rows, cols, eps);
  expect_close(download<float>(y), y_ref, kReductionTol, "l2_normalize_forward y");
  expect_close(download<float>(norm), norm_ref, kReductionTol, "l2_normalize_forward norm");

  Tensor dnorm = upload(norm_ref);
  Tensor dx = poisoned<float>(n);
  gpu::l2_normalize_backward(dev<float>(dxin), dev<float>(dnorm), dev<float>(ddy), dev<float>(dx), rows, cols, eps,
                             stream());
  std::vector<float> dx_ref(n);
  cpu::l2_normalize_backward(x.data(), norm_ref.data(), dy.data(), dx_ref.data(), rows, cols, eps);
  expect_close(download<float>(dx), dx_ref, kReductionTol, "l2_normalize_backward");
}

TEST(KernelsGpu, embedding_fp32_1001ids_1500x37) {
  SKIP_WITHOUT_GPU();
  std::mt19937 gen(108);
  // More rows than ids touch (untouched rows must come back as zeros), several repeats per id.
  const int64_t n_ids = 1001, rows = 1500, dim = 37;
  auto weight = randn(rows * dim, gen), grad_out = randn(n_ids * dim, gen);
  auto ids = random_ids(n_ids, 97, gen);  // ids in [0, 97): every touched row has ~10 repeats
  ids[5] = rows - 1;                     // the last row, once
  Tensor dweight = upload(weight), dids = upload(ids), dgrad = upload(grad_out);

  Tensor out = poisoned<float>(n_ids * dim);
  gpu::embedding_forward(dev<float>(dweight), dev<int64_t>(dids), dev<float>(out), n_ids, rows, dim, stream());
  std::vector<float> out_ref(n_ids * dim);
  cpu::embedding_forward(weight.data(), ids.data(), out_ref.data(), n_ids, rows, dim);
  expect_bitwise(download<float>(out), out_ref, "embedding_forward");

  // The backward accumulates into the rows in use: start both from the same nonzero gradient, so
  // untouched rows must come back unchanged.
  auto grad_start = randn(rows * dim, gen);
  Tensor grad_weight = upload(grad_start);
  gpu::embedding_backward(dev<float>(dgrad), dev<int64_t>(dids), dev<float>(grad_weight), n_ids, rows, dim, stream());
  std::vector<float> grad_ref = grad_start;
  cpu::embedding_backward(grad_out.data(), ids.data(), grad_ref.data(), n_ids, rows, dim);
  expect_close(download<float>(grad_weight), grad_ref, kElementwiseTol, "embedding_backward");
}

TEST(KernelsGpu, embedding_backward_deterministic_repeated_ids_5003x64) {
  SKIP_WITHOUT_GPU();
  std::mt19937 gen(109);
  // Heavy repetition (a padding id, a few popular items: runs over 256, summed by a whole block) next
  // to short runs (one warp each) is where an atomic scatter would make the result depend on
  // thread timing.
  const int64_t n_ids = 5003, rows = 300, dim = 72;
  auto grad_out = randn(n_ids * dim, gen);
  std::vector<int64_t> ids(n_ids);
  std::uniform_int_distribution<int> pick(0, 9), spread(100, 289);
  for (int64_t i = 0; i < n_ids; ++i) {
    int choice = pick(gen);
    ids[i] = choice < 5 ? 0 : choice < 7 ? 7 : choice < 8 ? 299 : spread(gen);
  }
  Tensor dids = upload(ids), dgrad = upload(grad_out);
  auto grad_start = randn(rows * dim, gen);
  std::vector<std::vector<float>> runs;
  for (int run = 0; run < 2; ++run) {
    Tensor grad_weight = upload(grad_start);
    gpu::embedding_backward(dev<float>(dgrad), dev<int64_t>(dids), dev<float>(grad_weight), n_ids, rows, dim,
                            stream());
    runs.push_back(download<float>(grad_weight));
  }
  expect_bitwise(runs[1], runs[0], "embedding_backward run 2 vs run 1");
  std::vector<float> grad_ref = grad_start;
  cpu::embedding_backward(grad_out.data(), ids.data(), grad_ref.data(), n_ids, rows, dim);
  expect_close(runs[0], grad_ref, kReductionTol, "embedding_backward vs CPU");
}

// Flash attention against the CPU reference, both masks (causal: SASRec, bidirectional: BERT4Rec),
// head dims under, between and at the kernels' buckets (16; 50, not a multiple of 4; 64; 128) and
// lengths around the 64-position tile (1, 37, 200, 257). Two heads; batch row 0 is left-padded,
// row 1 full, row 2 all padding (each query attends only itself).
struct AttentionCase {
  bool causal;
  int64_t seq, head_dim;
};

// Test listings show the case, not the struct's raw bytes (padding included).
void PrintTo(const AttentionCase& c, std::ostream* os) {
  *os << (c.causal ? "causal" : "bidirectional") << " T=" << c.seq << " Dh=" << c.head_dim;
}

class KernelsGpuAttention : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(KernelsGpuAttention, fp32_3_rows_heads2_padded) {
  SKIP_WITHOUT_GPU();
  const AttentionCase c = GetParam();
  std::mt19937 gen(static_cast<unsigned>(110 + 1000 * c.causal + 10 * c.seq + c.head_dim));
  const int64_t batch = 3, heads = 2, d = heads * c.head_dim;
  auto qkv = randn(batch * c.seq * 3 * d, gen), dout = randn(batch * c.seq * d, gen);
  std::vector<float> valid(batch * c.seq, 1.0f);
  std::fill(valid.begin(), valid.begin() + c.seq / 3, 0.0f);
  std::fill(valid.begin() + 2 * c.seq, valid.end(), 0.0f);
  Tensor dqkv_in = upload(qkv), dvalid = upload(valid), ddout = upload(dout);

  Tensor out = poisoned<float>(batch * c.seq * d), lse = poisoned<float>(batch * heads * c.seq);
  gpu::attention_forward(dev<float>(dqkv_in), dev<float>(dvalid), dev<float>(out), dev<float>(lse), batch, c.seq,
                         heads, c.head_dim, c.causal, stream());
  std::vector<float> out_ref(batch * c.seq * d), lse_ref(batch * heads * c.seq);
  cpu::attention_forward(qkv.data(), valid.data(), out_ref.data(), lse_ref.data(), batch, c.seq, heads, c.head_dim,
                         c.causal);
  expect_close(download<float>(out), out_ref, kReductionTol, "attention_forward out");
  expect_close(download<float>(lse), lse_ref, kReductionTol, "attention_forward lse");

  // The backward gets the reference's out and lse, so only the backward is compared.
  Tensor dout_saved = upload(out_ref), dlse_saved = upload(lse_ref);
  Tensor dqkv = poisoned<float>(batch * c.seq * 3 * d);
  gpu::attention_backward(dev<float>(dqkv_in), dev<float>(dvalid), dev<float>(dout_saved), dev<float>(dlse_saved),
                          dev<float>(ddout), dev<float>(dqkv), batch, c.seq, heads, c.head_dim, c.causal, stream());
  std::vector<float> dqkv_ref(batch * c.seq * 3 * d);
  cpu::attention_backward(qkv.data(), valid.data(), out_ref.data(), lse_ref.data(), dout.data(), dqkv_ref.data(), batch,
                          c.seq, heads, c.head_dim, c.causal);
  expect_close(download<float>(dqkv), dqkv_ref, kReductionTol, "attention_backward dqkv");
}

std::vector<AttentionCase> attention_cases() {
  std::vector<AttentionCase> cases;
  for (bool causal : {true, false})
    for (int64_t seq : {1, 37, 200, 257})
      for (int64_t head_dim : {16, 50, 64, 128}) cases.push_back({causal, seq, head_dim});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Shapes, KernelsGpuAttention, ::testing::ValuesIn(attention_cases()),
                         [](const ::testing::TestParamInfo<AttentionCase>& info) {
                           return std::string(info.param.causal ? "causal" : "bidirectional") + "_T" +
                                  std::to_string(info.param.seq) + "_D" + std::to_string(info.param.head_dim);
                         });

TEST(KernelsGpu, attention_fp32_8x200_heads4_dim64_deterministic) {
  SKIP_WITHOUT_GPU();
  std::mt19937 gen(111);
  // The SASRec benchmark shape (T = 200, head dim 64) with several heads and left padding of every
  // length class: whole padded key tiles are skipped, partial ones are masked.
  const int64_t batch = 8, seq = 200, heads = 4, head_dim = 64, d = heads * head_dim;
  auto qkv = randn(batch * seq * 3 * d, gen, 0.5f), dout = randn(batch * seq * d, gen);
  std::vector<float> valid(batch * seq, 1.0f);
  for (int64_t b = 0; b < batch; ++b) std::fill(valid.begin() + b * seq, valid.begin() + b * seq + b * 27, 0.0f);
  Tensor dqkv_in = upload(qkv), dvalid = upload(valid), ddout = upload(dout);
  std::vector<float> out_ref(batch * seq * d), lse_ref(batch * heads * seq), dqkv_ref(batch * seq * 3 * d);
  cpu::attention_forward(qkv.data(), valid.data(), out_ref.data(), lse_ref.data(), batch, seq, heads, head_dim,
                         /*causal=*/true);
  cpu::attention_backward(qkv.data(), valid.data(), out_ref.data(), lse_ref.data(), dout.data(), dqkv_ref.data(), batch,
                          seq, heads, head_dim, /*causal=*/true);
  // Forward and backward chained on the GPU, twice: no atomics, so the runs agree bit for bit.
  std::vector<std::vector<float>> outs, dqkvs;
  for (int run = 0; run < 2; ++run) {
    Tensor out = poisoned<float>(batch * seq * d), lse = poisoned<float>(batch * heads * seq);
    Tensor dqkv = poisoned<float>(batch * seq * 3 * d);
    gpu::attention_forward(dev<float>(dqkv_in), dev<float>(dvalid), dev<float>(out), dev<float>(lse), batch, seq,
                           heads, head_dim, /*causal=*/true, stream());
    gpu::attention_backward(dev<float>(dqkv_in), dev<float>(dvalid), dev<float>(out), dev<float>(lse),
                            dev<float>(ddout), dev<float>(dqkv), batch, seq, heads, head_dim, /*causal=*/true, stream());
    outs.push_back(download<float>(out));
    dqkvs.push_back(download<float>(dqkv));
  }
  expect_close(outs[0], out_ref, kReductionTol, "attention_forward out");
  expect_close(dqkvs[0], dqkv_ref, kReductionTol, "attention_backward dqkv");
  expect_bitwise(outs[1], outs[0], "attention_forward run 2 vs run 1");
  expect_bitwise(dqkvs[1], dqkvs[0], "attention_backward run 2 vs run 1");
}

TEST(KernelsGpu, row_dot_fp32_203x129_dim72_deterministic) {
  SKIP_WITHOUT_GPU();
  std::mt19937 gen(112);
  const int64_t rows = 203, per_row = 129, dim = 72;
  auto h = randn(rows * dim, gen), c = randn(rows * per_row * dim, gen), dout = randn(rows * per_row, gen);
  Tensor dh_in = upload(h), dc_in = upload(c), ddout = upload(dout);
  Tensor out = poisoned<float>(rows * per_row);
  gpu::row_dot_forward(dev<float>(dh_in), dev<float>(dc_in), dev<float>(out), rows, per_row, dim, stream());
  std::vector<float> out_ref(rows * per_row);
  cpu::row_dot_forward(h.data(), c.data(), out_ref.data(), rows, per_row, dim);
  expect_close(download<float>(out), out_ref, kReductionTol, "row_dot_forward");

  std::vector<float> dh_ref(rows * dim), dc_ref(rows * per_row * dim);
  cpu::row_dot_backward(h.data(), c.data(), dout.data(), dh_ref.data(), dc_ref.data(), rows, per_row, dim);
  std::vector<std::vector<float>> dh_runs;
  for (int run = 0; run < 2; ++run) {
    Tensor dh = poisoned<float>(rows * dim), dc = poisoned<float>(rows * per_row * dim);
    gpu::row_dot_backward(dev<float>(dh_in), dev<float>(dc_in), dev<float>(ddout), dev<float>(dh), dev<float>(dc),
                          rows, per_row, dim, stream());
    dh_runs.push_back(download<float>(dh));
    expect_close(dh_runs.back(), dh_ref, kReductionTol, "row_dot_backward dh");
    expect_close(download<float>(dc), dc_ref, kElementwiseTol, "row_dot_backward dc");
  }
  expect_bitwise(dh_runs[1], dh_runs[0], "row_dot_backward dh run 2 vs run 1");
  // Either gradient alone: the other pointer is null and must not be touched.
  Tensor dh_only = poisoned<float>(rows * dim);
  gpu::row_dot_backward(dev<float>(dh_in), dev<float>(dc_in), dev<float>(ddout), dev<float>(dh_only), nullptr, rows,
                        per_row, dim, stream());
  expect_close(download<float>(dh_only), dh_ref, kReductionTol, "row_dot_backward dh alone");
}

TEST(KernelsGpu, cross_entropy_fp32_203x1031) {
  SKIP_WITHOUT_GPU();
  std::mt19937 gen(112);
  const int64_t rows = 203, classes = 1031;
  auto logits = randn(rows * classes, gen, 3.0f);
  auto targets = random_ids(rows, classes, gen);
  for (int64_t r = 0; r < rows; r += 5) targets[r] = -1;  // ignored rows
  targets[1] = classes - 1;
  Tensor dlogits_in = upload(logits), dtargets = upload(targets);

  Tensor loss = poisoned<float>(1), lse = poisoned<float>(rows), count = poisoned<float>(1);
  gpu::cross_entropy_forward(dev<float>(dlogits_in), dev<int64_t>(dtargets), dev<float>(loss), dev<float>(lse),
                             dev<float>(count), rows, classes, stream());
  float loss_ref = 0.0f, count_ref = 0.0f;
  std::vector<float> lse_ref(rows);
  cpu::cross_entropy_forward(logits.data(), targets.data(), &loss_ref, lse_ref.data(), &count_ref, rows, classes);
  expect_close(download<float>(loss), {loss_ref}, kReductionTol, "cross_entropy_forward loss");
  expect_close(download<float>(lse), lse_ref, kReductionTol, "cross_entropy_forward logsumexp");
  expect_bitwise(download<float>(count), {count_ref}, "cross_entropy_forward valid_count");

  // dloss and valid_count are read from device memory.
  const float dloss_value = 0.7f;
  Tensor dlse = upload(lse_ref), dcount = upload(std::vector<float>{count_ref});
  Tensor ddloss = upload(std::vector<float>{dloss_value});
  Tensor grad = poisoned<float>(rows * classes);
  gpu::cross_entropy_backward(dev<float>(dlogits_in), dev<int64_t>(dtargets), dev<float>(dlse), dev<float>(dcount),
                              dev<float>(ddloss), dev<float>(grad), rows, classes, stream());
  std::vector<float> grad_ref(rows * classes);
  cpu::cross_entropy_backward(logits.data(), targets.data(), lse_ref.data(), &count_ref, &dloss_value,
                              grad_ref.data(), rows, classes);
  expect_close(download<float>(grad), grad_ref, kReductionTol, "cross_entropy_backward");

  // Every target ignored: loss 0, count 0, zero gradient.
  std::vector<int64_t> ignored(rows, -1);
  Tensor dignored = upload(ignored);
  loss = poisoned<float>(1);
  count = poisoned<float>(1);
  gpu::cross_entropy_forward(dev<float>(dlogits_in), dev<int64_t>(dignored), dev<float>(loss), dev<float>(lse),
                             dev<float>(count), rows, classes, stream());
  expect_bitwise(download<float>(loss), {0.0f}, "cross_entropy_forward loss, all ignored");
  expect_bitwise(download<float>(count), {0.0f}, "cross_entropy_forward valid_count, all ignored");
  grad = poisoned<float>(rows * classes);
  gpu::cross_entropy_backward(dev<float>(dlogits_in), dev<int64_t>(dignored), dev<float>(lse), dev<float>(count),
                              dev<float>(ddloss), dev<float>(grad), rows, classes, stream());
  expect_bitwise(download<float>(grad), std::vector<float>(rows * classes, 0.0f),
                 "cross_entropy_backward, all ignored");
}

TEST(KernelsGpu, reduce_fp32_1001x77) {
  SKIP_WITHOUT_GPU();
  std::mt19937 gen(113);
  const int64_t outer = 1001, inner = 77, n = outer * inner;
  auto x = randn(n, gen);
  for (float& v : x) v += 0.25f;  // a sum well away from zero, so the relative check is meaningful
  Tensor dx = upload(x);

  Tensor total = poisoned<float>(1);
  gpu::sum_all(dev<float>(dx), dev<float>(total), n, stream());
  float total_ref = 0.0f;
  cpu::sum_all(x.data(), &total_ref, n);
  expect_close(download<float>(total), {total_ref}, kReductionTol, "sum_all");

  Tensor columns = poisoned<float>(inner);
  gpu::sum_leading(dev<float>(dx), dev<float>(columns), outer, inner, stream());
  std::vector<float> columns_ref(inner);
  cpu::sum_leading(x.data(), columns_ref.data(), outer, inner);
  expect_close(download<float>(columns), columns_ref, kReductionTol, "sum_leading");
  // Deterministic: a second run gives the same bits.
  Tensor again = poisoned<float>(inner);
  gpu::sum_leading(dev<float>(dx), dev<float>(again), outer, inner, stream());
  expect_bitwise(download<float>(again), download<float>(columns), "sum_leading run 2 vs run 1");

  Tensor scalar = upload(std::vector<float>{1.75f});
  Tensor filled = poisoned<float>(n);
  gpu::broadcast_scalar(dev<float>(scalar), -0.3f, dev<float>(filled), n, stream());
  std::vector<float> filled_ref(n);
  const float scalar_host = 1.75f;
  cpu::broadcast_scalar(&scalar_host, -0.3f, filled_ref.data(), n);
  expect_bitwise(download<float>(filled), filled_ref, "broadcast_scalar");
}

// Copies a host array of plain structs into a device buffer (an I64 tensor of enough bytes).
template <typename T>
Tensor upload_structs(const std::vector<T>& items) {
  Tensor buffer = Tensor::empty({static_cast<int64_t>((items.size() * sizeof(T) + 7) / 8)}, DType::I64, Device::CUDA);
  muonrec::copy_bytes(buffer.raw_data(), Device::CUDA, items.data(), Device::CPU, items.size() * sizeof(T));
  return buffer;
}

// Two tensors (one spanning several chunks, one with a bf16 copy), gradient scale 0.5, three steps:
// the fused GPU update must equal the CPU reference bit for bit (same element math, no FMA). Tensor
// 0's parameter starts one float into its buffer (the element-wise fallback), tensor 1's gradient
// too (the vectorised loop with unaligned gradient loads, as in a gradient arena); the float before
// each must be left alone.
TEST(KernelsGpu, adamw_multi_tensor_bitwise_4099_and_70001) {
  SKIP_WITHOUT_GPU();
  using muonrec::kernels::AdamWHyper;
  using muonrec::kernels::AdamWTensor;
  using muonrec::kernels::TensorChunk;
  constexpr float kSentinel = 7.0f;
  auto upload_shifted = [&](const std::vector<float>& values, int64_t shift) {
    std::vector<float> padded(static_cast<size_t>(shift), kSentinel);
    padded.insert(padded.end(), values.begin(), values.end());
    return upload(padded);
  };
  auto download_shifted = [&](const Tensor& t, int64_t shift, const std::string& what) {
    std::vector<float> values = download<float>(t);
    for (int64_t i = 0; i < shift; ++i) EXPECT_EQ(values[i], kSentinel) << what << ": wrote before the tensor";
    values.erase(values.begin(), values.begin() + shift);
    return values;
  };
  std::mt19937 gen(114);
  const std::vector<int64_t> sizes = {4099, 70001}, param_shift = {1, 0}, grad_shift = {0, 1};
  std::vector<std::vector<float>> param, m, v;
  std::vector<std::vector<uint16_t>> bf16(2);
  std::vector<Tensor> dparam, dm, dv, dbf16;
  for (size_t t = 0; t < sizes.size(); ++t) {
    param.push_back(randn(sizes[t], gen));
    m.push_back(randn(sizes[t], gen, 0.1f));
    v.push_back(randn(sizes[t], gen, 0.1f));
    for (float& value : v.back()) value = value * value;  // second moments are non-negative
    dparam.push_back(upload_shifted(param.back(), param_shift[t]));
    dm.push_back(upload(m.back()));
    dv.push_back(upload(v.back()));
  }
  bf16[1].assign(sizes[1], 0);
  dbf16.push_back(Tensor());
  dbf16.push_back(Tensor::zeros({sizes[1]}, DType::BF16, Device::CUDA));
  std::vector<TensorChunk> chunks = {{0, 0, 4099}, {1, 0, 65536}, {1, 65536, 70001}};
  Tensor dchunks = upload_structs(chunks);
  for (int64_t step = 1; step <= 3; ++step) {
    std::vector<std::vector<float>> grad = {randn(sizes[0], gen), randn(sizes[1], gen)};
    std::vector<Tensor> dgrad = {upload_shifted(grad[0], grad_shift[0]), upload_shifted(grad[1], grad_shift[1])};
    std::vector<AdamWTensor> host_table, device_table;
    for (size_t t = 0; t < 2; ++t) {
      host_table.push_back({param[t].data(), grad[t].data(), m[t].data(), v[t].data(),
                            t == 1 ? bf16[1].data() : nullptr, sizes[t]});
      device_table.push_back({dev<float>(dparam[t]) + param_shift[t], dev<float>(dgrad[t]) + grad_shift[t],
                              dev<float>(dm[t]), dev<float>(dv[t]),
                              t == 1 ? static_cast<uint16_t*>(dbf16[1].raw_data()) : nullptr, sizes[t]});
    }
    const AdamWHyper hyper{1e-3f, 0.9f, 0.98f, 1e-8f, 0.01f, 0.5f, step, 42};
    Tensor dtable = upload_structs(device_table), dhyper = upload_structs(std::vector<AdamWHyper>{hyper});
    gpu::adamw_multi_tensor(static_cast<const AdamWTensor*>(dtable.raw_data()),
                            static_cast<const TensorChunk*>(dchunks.raw_data()), 3,
                            static_cast<const AdamWHyper*>(dhyper.raw_data()), stream());
    cpu::adamw_multi_tensor(host_table.data(), chunks.data(), 3, &hyper);
    const std::string tag = " after step " + std::to_string(step);
    for (size_t t = 0; t < 2; ++t) {
      expect_bitwise(download_shifted(dparam[t], param_shift[t], "adamw param"), param[t], "adamw param" + tag);
      expect_bitwise(download<float>(dm[t]), m[t], "adamw m" + tag);
      expect_bitwise(download<float>(dv[t]), v[t], "adamw v" + tag);
    }
    expect_bitwise(download<uint16_t>(dbf16[1]), bf16[1], "adamw bf16 copy" + tag);
  }
}

}  // namespace

#else  // !MUONREC_WITH_CUDA

TEST(KernelsGpu, skipped_without_cuda) { GTEST_SKIP() << "built without CUDA"; }

#endif  // MUONREC_WITH_CUDA
