// safetensors: round trip, the PyTorch fixtures, and corrupt files.
#include <fmt/format.h>

#include <chrono>
#include <fstream>

#include "muonrec/engine/json_text.h"
#include "muonrec/engine/safetensors.h"
#include "test_util.h"

using namespace muonrec;

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string with_header(const std::string& json, const std::string& data) {
  uint64_t n = json.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + json + data;
}

}  // namespace

TEST(Safetensors, round_trip_all_dtypes_and_metadata) {
  std::string path = testkit::scratch_path("round_trip.safetensors");
  Tensor f = testkit::random_tensor({3, 5}, 1);
  Tensor b = f.to_dtype(DType::BF16);
  Tensor i = Tensor::from_i64({1, -2, 3}, {3});
  Tensor j = i.to_dtype(DType::I32);
  save_safetensors(path, {{"f", f}, {"b", b}, {"i", i}, {"j", j}}, {{"config", "{\"d\": 5}"}});
  SafetensorsFile file = load_safetensors(path);
  EXPECT_EQ(file.at("f").to_f32_vector(), f.to_f32_vector());
  EXPECT_EQ(file.at("b").dtype(), DType::BF16);
  EXPECT_EQ(file.at("b").to_f32_vector(), b.to_f32_vector());
  EXPECT_EQ(file.at("i").to_i64_vector(), i.to_i64_vector());
  EXPECT_EQ(file.at("j").dtype(), DType::I32);
  EXPECT_EQ(file.metadata.at("config"), "{\"d\": 5}");
  EXPECT_THROW(file.at("missing"), Error);
}

TEST(Safetensors, a_write_cut_short_leaves_the_previous_file_whole) {
  testkit::TempDir dir;
  const std::string path = dir.path("state.safetensors");
  const Tensor good = testkit::random_tensor({4, 4}, 2);
  save_safetensors(path, {{"w", good}});
  // A file-size limit below the new file's size: the write fails partway, as on a full disk.
  const std::string message = testkit::error_under_file_size_limit(
      4096, [&] { save_safetensors(path, {{"w", testkit::random_tensor({64, 64}, 3)}}); });
  EXPECT_NE(message.find("write failed"), std::string::npos) << message;
  EXPECT_NE(message.find("is left as it was"), std::string::npos) << message;
  EXPECT_EQ(load_safetensors(path).at("w").to_f32_vector(), good.to_f32_vector());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(Safetensors, a_file_in_a_missing_directory_is_refused_under_its_own_name) {
  testkit::TempDir dir;
  const std::string path = dir.path("missing/state.safetensors");
  testkit::expect_error([&] { save_safetensors(path, {{"w", testkit::random_tensor({2, 2}, 1)}}); },
                        {path + ": cannot write it: No such file or directory"});
}

TEST(Safetensors, metadata_that_is_not_utf8_is_written_with_replacement_characters) {
  // A command line holding a Latin-1 file name: the run's state is still written.
  testkit::TempDir dir;
  const std::string path = dir.path("state.safetensors");
  const std::string latin1 = "train --save-last caf\xe9.st";
  save_safetensors(path, {{"w", Tensor::zeros({2})}}, {{"command", latin1}});
  EXPECT_EQ(load_safetensors(path).metadata.at("command"), "train --save-last caf\xef\xbf\xbd.st");
  EXPECT_EQ(as_written_to_json(latin1), "train --save-last caf\xef\xbf\xbd.st");
  EXPECT_EQ(as_written_to_json("caf\xc3\xa9"), "caf\xc3\xa9");  // UTF-8 stays as it is
}

TEST(Safetensors, reads_the_pytorch_fixture) {
  std::string path = testkit::fixture_path("sasrec_tiny.safetensors");
  SKIP_WITHOUT_FIXTURE(path);
  SafetensorsFile file = load_safetensors(path);
  EXPECT_EQ(file.at("input.ids").dtype(), DType::I64);
  EXPECT_EQ(file.at("input.ids").shape(), (Shape{4, 8}));
  EXPECT_EQ(file.at("param.item.weight").shape(), (Shape{51, 16}));
  EXPECT_NEAR(file.at("output.loss").item(), std::stod(file.metadata.at("loss")), 1e-5);
}

// An empty tensor whose other dimensions multiply past 64 bits is still an empty tensor.
TEST(Safetensors, an_empty_tensor_loads_whatever_its_other_dimensions) {
  std::string path = testkit::scratch_path("empty.safetensors");
  write_bytes(path, with_header(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})", ""));
  EXPECT_EQ(load_safetensors(path).at("x").numel(), 0);
}

TEST(Safetensors, corrupt_files_name_the_problem) {
  auto expect_error = [](const std::string& bytes, const std::string& needle) {
    std::string path = testkit::scratch_path("corrupt.safetensors");
    write_bytes(path, bytes);
    try {
      load_safetensors(path);
      ADD_FAILURE() << "no error for: " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  };
  expect_error("abc", "shorter than the 8-byte header");
  expect_error(with_header("{\"x\": 1", ""), "not valid JSON");
  expect_error(with_header(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234"), "outside");
  expect_error(with_header(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "12345678"), "'x' has 8 bytes");
  expect_error(with_header(R"({"x":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", "12345678"), "C64");
  uint64_t huge = 1ull << 40;
  expect_error(std::string(reinterpret_cast<const char*>(&huge), 8) + "{}", "exceeds the file size");
  expect_error(std::string(8, '\0') + "{}", "its header length 0 is too short for a JSON object");
  // A file of another kind (a data file given to --resume) is refused from its first 8 bytes, not
  // read whole first: here a sparse 64 GiB file, which reading would have to allocate.
  {
    const std::string path = testkit::scratch_path("sparse.safetensors");
    write_bytes(path, "");
    std::filesystem::resize_file(path, uint64_t{64} << 30);
    try {
      load_safetensors(path);
      ADD_FAILURE() << "a sparse file of zeros loaded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("its header length 0 is too short"), std::string::npos) << e.what();
    }
  }
  // Shapes that no data section holds are refused before anything is allocated for them: counts
  // that wrap 64 bits (2^61 F64 values are 2^64 bytes, 2^32 x 2^32 elements are 2^64) and ones in
  // the terabytes.
  expect_error(with_header(R"({"x":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,0]}})", ""),
               "'x' has shape [18446744073709551615], a dimension beyond 2^63 - 1");
  for (const char* shape : {"[-1]", "[0,-1]"})
    expect_error(with_header(fmt::format(R"({{"x":{{"dtype":"F32","shape":{},"data_offsets":[0,0]}}}})", shape), ""),
                 "'x' has a negative dimension");
  for (const char* entry : {R"({"x":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})",
                            R"({"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})",
                            R"({"x":{"dtype":"BF16","shape":[1000000000000],"data_offsets":[0,8]}})"})
    expect_error(with_header(entry, "12345678"), "more elements than the");
  // A dimension that is no integer (read as one, 2.9 would be 2).
  expect_error(with_header(R"({"x":{"dtype":"F32","shape":[2.9],"data_offsets":[0,8]}})", "12345678"),
               "'x' has shape [2.9], not a list of integers");
  expect_error(with_header(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0.7,4.9]}})", "1234"),
               "'x' has data_offsets [0.7,4.9], not a list of byte offsets");
  // The tensors must tile the data section: no two reading the same bytes, no bytes of nobody's.
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                           "12345678"),
               "'b' overlaps the bytes of another tensor");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", "12345678"),
               "data bytes [0, 4) belong to no tensor (a hole before tensor 'a')");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "12345678"),
               "data bytes [4, 8) belong to no tensor");
  // A key named twice would hide a tensor or a metadata entry; metadata values are strings.
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                           "1234"),
               "header names 'a' twice");
  expect_error(with_header(R"({"__metadata__":{"epoch":"1","epoch":"2"}})", ""), "header names 'epoch' twice");
  expect_error(with_header(R"({"__metadata__":{"epoch":7}})", ""), "__metadata__ 'epoch' is number, not a string");
  expect_error(with_header(R"({"__metadata__":["a"]})", ""), "__metadata__ is array, not a map of strings");
  // What a hostile header could use to exhaust time or memory, or to hide bytes: nesting deeper
  // than a tensor entry's arrays, more entries than any checkpoint has, a NUL (which ends nlohmann's
  // input: what follows it would go unread).
  expect_error(with_header(R"({"__metadata__":{"a":{"b":{"c":"d"}}}})", ""), "the header nests deeper than 3 levels");
  expect_error(with_header(R"({"x":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}})", "1234"),
               "the header nests deeper than 3 levels");
  expect_error(with_header(std::string(R"({"__metadata__":{"a":"b"}})") + '\0' + "{{{ garbage", ""),
               "the header holds a NUL byte at 26");
  {
    std::string entries;
    for (int i = 0; i <= 100000; ++i)
      entries += fmt::format(R"({}"t{}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})", i ? "," : "{", i);
    expect_error(with_header(entries + "}", ""), "the header has more than 100000 entries");
  }
  // Many entries read in time linear in their number (a check of each object's keys, run as the
  // header was parsed, made it quadratic: 25,000 entries took 9 s, 50,000 took 47 s).
  {
    std::string entries;
    for (int i = 0; i < 50000; ++i)
      entries += fmt::format(R"({}"t{}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})", i ? "," : "{", i);
    const std::string path = testkit::scratch_path("many.safetensors");
    write_bytes(path, with_header(entries + "}", ""));
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(load_safetensors(path).tensors.size(), 50000u);
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10.0);
  }
  // A zero-size tensor still loads, whatever its other dimensions.
  {
    const std::string path = testkit::scratch_path("empty_tensor.safetensors");
    write_bytes(path, with_header(R"({"x":{"dtype":"F32","shape":[1000000000000,0],"data_offsets":[0,0]}})", ""));
    EXPECT_EQ(load_safetensors(path).at("x").numel(), 0);
  }
  testkit::expect_error([] { load_safetensors(std::filesystem::temp_directory_path().string()); },
                        {"is a directory, not a safetensors file"});
  EXPECT_THROW(load_safetensors(testkit::scratch_path("does_not_exist.safetensors")), Error);
}

// The F64 path (fixtures are F32): a file written by hand, its doubles read back as F32; three
// doubles under a shape of two are refused, not read in part.
TEST(Safetensors, f64_tensors_load_as_f32) {
  const std::string path = testkit::scratch_path("f64.safetensors");
  auto write_three_doubles = [&](const std::string& shape) {
    std::string header = R"({"x":{"dtype":"F64","shape":)" + shape + R"(,"data_offsets":[0,24]}})";
    header.append((8 - header.size() % 8) % 8, ' ');
    const uint64_t header_size = header.size();
    const double values[3] = {1.5, -2.25, 1e-3};
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(&header_size), 8);
    out.write(header.data(), static_cast<std::streamsize>(header_size));
    out.write(reinterpret_cast<const char*>(values), sizeof values);
  };
  write_three_doubles("[3]");
  SafetensorsFile file = load_safetensors(path);
  EXPECT_EQ(file.at("x").dtype(), DType::F32);
  EXPECT_EQ(file.at("x").to_f32_vector(), (std::vector<float>{1.5f, -2.25f, 1e-3f}));
  write_three_doubles("[2]");
  testkit::expect_error([&] { load_safetensors(path); }, {"tensor 'x' has 24 bytes for F64 [2]"});
}
