// Tensors: construction, dtypes, views, devices, the RNG, the host block cache.
#include <cstdlib>

#include "muonrec/engine/host_block_cache.h"
#include "muonrec/kernels/cpu/philox_draws.h"
#include "test_util.h"

using namespace muonrec;

TEST(Tensor, shapes_dtypes_and_sizes) {
  Tensor t = Tensor::zeros({2, 3, 4}, DType::BF16);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.nbytes(), 48u);
  EXPECT_EQ(t.dim(-1), 4);
  EXPECT_THROW(t.dim(3), Error);
  EXPECT_THROW(t.data<float>(), Error);  // typed access checks the dtype
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_EQ(dtype_size(DType::I32), 4u);
}

TEST(Tensor, an_undefined_tensor_refuses_every_use_with_an_error) {
  // The usual way to hold one: the gradient of a parameter that the loss does not depend on.
  Tensor used = Tensor::from_f32({1, 2}, {2}).set_requires_grad(true);
  Tensor unused = Tensor::from_f32({3}, {1}).set_requires_grad(true);
  backward(ops::sum(used));
  ASSERT_FALSE(unused.grad().defined());
  const std::vector<std::function<void()>> uses = {
      [&] { unused.grad().to_f32_vector(); },   [&] { unused.grad().to_i64_vector(); },
      [&] { unused.grad().dtype(); },           [&] { unused.grad().device(); },
      [&] { unused.grad().data<float>(); },     [&] { unused.grad().raw_data(); },
      [&] { unused.grad().to(Device::CPU); },   [&] { unused.grad().clone(); },
      [&] { unused.grad().numel(); },           [&] { unused.grad().grad(); },
      [&] { unused.grad().is_leaf(); },         [&] { unused.grad().zero_grad(); },
      [&] { unused.grad().has_grad_buffer(); }, [&] { unused.grad().set_requires_grad(false); }};
  for (const auto& use : uses) testkit::expect_error(use, {"use of an undefined tensor", "grad()"});
  EXPECT_FALSE(Tensor().requires_grad());
  EXPECT_FALSE(Tensor().defined());
}

TEST(Tensor, reshape_infers_and_shares_storage) {
  Tensor t = Tensor::from_f32({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor r = t.reshape({3, -1});
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  r.data<float>()[0] = 42;
  EXPECT_EQ(t.to_f32_vector()[0], 42);
  EXPECT_THROW(t.reshape({4, -1}), Error);
}

TEST(Tensor, narrow_rows_is_an_offset_view) {
  Tensor t = Tensor::from_f32({0, 1, 2, 3, 4, 5, 6, 7}, {4, 2});
  EXPECT_EQ(t.narrow_rows(1, 2).to_f32_vector(), (std::vector<float>{2, 3, 4, 5}));
  EXPECT_THROW(t.narrow_rows(3, 2), Error);
}

TEST(Tensor, integer_casts_round_trip) {
  Tensor t = Tensor::from_i64({-5, 0, 123456789}, {3});
  EXPECT_EQ(t.to_dtype(DType::I32).to_dtype(DType::I64).to_i64_vector(), (std::vector<int64_t>{-5, 0, 123456789}));
}

TEST(Tensor, device_round_trip_when_gpu_present) {
  SKIP_WITHOUT_GPU();
  Tensor t = testkit::random_tensor({1000}, 1);
  EXPECT_EQ(t.to(Device::CUDA).to(Device::CPU).to_f32_vector(), t.to_f32_vector());
  Tensor b = t.to_dtype(DType::BF16);
  EXPECT_EQ(t.to(Device::CUDA).to_dtype(DType::BF16).to(Device::CPU).to_f32_vector(), b.to_f32_vector());
}

TEST(Tensor, parse_device_names) {
  EXPECT_EQ(parse_device("cpu"), Device::CPU);
  EXPECT_EQ(parse_device("auto"), cuda_available() ? Device::CUDA : Device::CPU);
  EXPECT_THROW(parse_device("tpu"), Error);
  if (!cuda_available()) EXPECT_THROW(parse_device("cuda"), Error);
}

TEST(Rng, philox_matches_the_published_known_answer) {
  // Philox4x32-10 known-answer test from Random123 (counter 0, key 0).
  Philox4x32 r = philox4x32(0, 0, 0);
  EXPECT_EQ(r.v[0], 0x6627e8d5u);
  EXPECT_EQ(r.v[1], 0xe169c58du);
  EXPECT_EQ(r.v[2], 0xbc57ac4cu);
  EXPECT_EQ(r.v[3], 0x9b00dbd8u);
}

// The batched draws of the CPU kernels (vectorised where the CPU allows) equal the scalar function,
// for every count of counters around the vector width and across a carry into the high word.
TEST(Rng, batched_draws_equal_philox4x32) {
  const uint64_t key = 0x1234567890abcdefull, counter_hi = 0xfedcba9876543210ull;
  for (uint64_t first : {uint64_t{0}, uint64_t{5}, (uint64_t{1} << 32) - 3}) {
    for (int64_t counters = 0; counters <= 13; ++counters) {
      std::vector<uint32_t> draws(static_cast<size_t>(4 * counters + 1), 0xdeadbeefu);
      kernels::cpu::philox_draws(first, counters, counter_hi, key, draws.data());
      for (int64_t i = 0; i < counters; ++i) {
        const Philox4x32 r = philox4x32(first + static_cast<uint64_t>(i), counter_hi, key);
        for (int k = 0; k < 4; ++k) ASSERT_EQ(draws[4 * i + k], r.v[k]) << "first " << first << " i " << i;
      }
      EXPECT_EQ(draws.back(), 0xdeadbeefu) << "wrote past the last counter";
    }
  }
}

TEST(Rng, streams_are_reproducible_and_distinct) {
  PhiloxGenerator a(3), b(3);
  EXPECT_EQ(a.uniform_u64(), b.uniform_u64());
  EXPECT_NE(a.uniform_u64(), PhiloxGenerator(4).uniform_u64());
  double sum = 0, sq = 0;
  PhiloxGenerator g(9);
  for (int i = 0; i < 20000; ++i) {
    double x = g.normal();
    sum += x;
    sq += x * x;
  }
  EXPECT_NEAR(sum / 20000, 0.0, 0.03);
  EXPECT_NEAR(sq / 20000, 1.0, 0.05);
}

TEST(HostBlockCache, size_classes_round_up_by_at_most_an_eighth) {
  EXPECT_EQ(host_block_size(1), 64u);
  EXPECT_EQ(host_block_size(4096), 4096u);
  EXPECT_EQ(host_block_size(4097), 4608u);
  EXPECT_EQ(host_block_size(size_t{1} << 20), size_t{1} << 20);
  EXPECT_EQ(host_block_size((size_t{1} << 20) + 1), (size_t{1} << 20) + (size_t{1} << 17));
  EXPECT_EQ(host_block_size(size_t{1} << 63), size_t{1} << 63);  // the doubling must not wrap to 0
  // Sizes past 64 bits are refused, not wrapped into small allocations.
  testkit::expect_error([] { Tensor::empty({int64_t{1} << 62}, DType::F32); }, {"more bytes than 64 bits"});
  testkit::expect_error([] { Tensor::empty({int64_t{1} << 32, int64_t{1} << 32}, DType::F32); },
                        {"more elements than 64 bits"});
  for (size_t bytes = 1; bytes < (size_t{1} << 26); bytes = bytes * 3 / 2 + 7) {
    const size_t size = host_block_size(bytes);
    EXPECT_GE(size, bytes);
    EXPECT_EQ(size % 64, 0u) << bytes;
    if (bytes > 4096) EXPECT_LE(size, bytes + bytes / 8) << bytes;
  }
}

TEST(HostBlockCache, freed_block_serves_the_next_request_of_its_class_within_the_limit) {
  release_cached_host_memory();
  set_host_cache_limit(size_t{1} << 30);
  const size_t bytes = 3 << 20;  // above glibc's default mmap threshold
  void* first = host_allocate(bytes);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % 64, 0u);
  host_release(first, bytes);
  EXPECT_EQ(host_cached_bytes(), host_block_size(bytes));
  void* again = host_allocate(bytes - 1000);  // same class
  EXPECT_EQ(again, first);
  EXPECT_EQ(host_cached_bytes(), 0u);
  {
    Tensor t = Tensor::zeros({int64_t{1} << 20}, DType::F32);  // storage returns to the cache
  }
  EXPECT_EQ(host_cached_bytes(), host_block_size(size_t{4} << 20));

  set_host_cache_limit(0);  // frees the idle tensor block; a released block is not kept
  EXPECT_EQ(host_cached_bytes(), 0u);
  host_release(again, bytes);
  EXPECT_EQ(host_cached_bytes(), 0u);
  set_host_cache_limit(size_t{1} << 30);
}

TEST(HostBlockCache, an_idle_block_up_to_4x_larger_serves_a_request_and_returns_to_its_class) {
  release_cached_host_memory();
  set_host_cache_limit(size_t{1} << 30);
  const size_t large = 6 << 20;
  void* block = host_allocate(large);
  host_release(block, large);
  void* smaller = host_allocate(large / 4);  // a quarter: served by the idle large block
  EXPECT_EQ(smaller, block);
  EXPECT_EQ(host_cached_bytes(), 0u);
  void* tiny = host_allocate(large / 5);  // under a quarter: nothing idle serves it
  EXPECT_NE(tiny, block);
  host_release(smaller, large / 4);  // back in the large class, not the quarter's
  EXPECT_EQ(host_cached_bytes(), host_block_size(large));
  EXPECT_EQ(host_allocate(large), block);
  host_release(block, large);
  host_release(tiny, large / 5);
  EXPECT_EQ(host_cached_bytes(), host_block_size(large) + host_block_size(large / 5));
  release_cached_host_memory();
}

// The default bound is the most bytes ever live at once, not those live now: blocks freed after a
// peak stay for the next step. A fresh process, where no test has fixed the bound yet.
TEST(HostBlockCache, without_a_set_limit_idle_blocks_may_reach_the_peak_live_bytes) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  unsetenv("MUONREC_HOST_CACHE_MB");
  const size_t bytes = 1 << 20;
  EXPECT_EXIT(
      {
        void* a = host_allocate(bytes);
        void* b = host_allocate(bytes);
        host_release(a, bytes);
        host_release(b, bytes);
        std::exit(host_cached_bytes() == 2 * host_block_size(bytes) ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(HostBlockCache, over_the_limit_the_least_recently_freed_blocks_go_first) {
  release_cached_host_memory();
  // Three classes; a's requests cannot take b's or c's blocks (more than 4x a).
  const size_t a = 1 << 20, b = 5 << 20, c = 6 << 20;
  set_host_cache_limit(b + c);
  void* block_a = host_allocate(a);
  void* block_b = host_allocate(b);
  void* block_c = host_allocate(c);
  host_release(block_a, a);
  host_release(block_b, b);
  EXPECT_EQ(host_cached_bytes(), a + b);
  host_release(block_c, c);  // a, the oldest, makes room
  EXPECT_EQ(host_cached_bytes(), b + c);
  void* fresh_a = host_allocate(a);  // a miss: the cache is unchanged
  EXPECT_EQ(host_cached_bytes(), b + c);
  EXPECT_EQ(host_allocate(c), block_c);
  EXPECT_EQ(host_cached_bytes(), b);
  host_release(fresh_a, a);
  host_release(block_c, c);  // b is now the oldest and goes
  EXPECT_EQ(host_cached_bytes(), a + c);
  release_cached_host_memory();
  set_host_cache_limit(size_t{1} << 30);
}

// Sizes near the 64-bit limits are refused with an Error, never wrapped into small ones: an offset
// past the end read as in range, a byte count rounded up past 2^64 to a tiny block.
TEST(Tensor, sizes_at_the_64_bit_limits_are_refused_not_wrapped) {
  const Tensor t = Tensor::from_f32({1, 2, 3, 4}, {2, 2});
  testkit::expect_error([&] { t.narrow_rows(INT64_MAX, 1); }, {"narrow_rows(9223372036854775807, 1) out of range"});
  testkit::expect_error([&] { t.narrow_rows(1, INT64_MAX); }, {"out of range for shape [2, 2]"});
  testkit::expect_error([&] { Tensor::empty({int64_t{1} << 31, (int64_t{1} << 31) - 1}); },
                        {"out of host memory allocating"});
  testkit::expect_error([&] { host_block_size(SIZE_MAX - 100); }, {"out of host memory allocating"});
  // A zero anywhere makes an empty tensor, however large the other dimensions' product.
  EXPECT_EQ(Tensor::empty({int64_t{1} << 32, int64_t{1} << 32, 0}).numel(), 0);
  testkit::expect_error([&] { t.reshape({-2, -2}); }, {"reshape: dimension 0 of [-2, -2] is negative"});
}

// A gradient set by hand must fit the tensor: a mismatch would surface later, in a kernel.
TEST(Tensor, set_grad_refuses_a_gradient_of_another_shape_or_dtype) {
  Tensor w = Tensor::zeros({2}).set_requires_grad(true);
  testkit::expect_error([&] { w.set_grad(Tensor::zeros({3, 2})); },
                        {"set_grad: a gradient for a F32 tensor of shape [2] on cpu", "got F32 [3, 2] on cpu"});
  testkit::expect_error([&] { w.set_grad(Tensor::zeros({2}, DType::BF16)); }, {"got BF16 [2]"});
  testkit::expect_error([&] { w.set_grad(Tensor()); }, {"got an undefined tensor"});
  w.set_grad(Tensor::full({2}, 3.0f));
  EXPECT_EQ(w.grad().to_f32_vector(), (std::vector<float>{3, 3}));
}
