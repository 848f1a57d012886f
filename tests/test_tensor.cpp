// Tensors: construction, dtypes, views, devices, the RNG.
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
