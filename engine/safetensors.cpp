#include "muonrec/engine/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>
#include <vector>

#include "muonrec/engine/error.h"
#include "muonrec/engine/file_replace.h"
#include "muonrec/engine/json_text.h"

namespace muonrec {

const Tensor& SafetensorsFile::at(const std::string& name) const {
  auto it = tensors.find(name);
  MUONREC_CHECK(it != tensors.end(), "{}: no tensor named '{}'", path, name);
  return it->second;
}

void SafetensorsFile::check_values(const std::string& name, const char* what, float lowest) const {
  const Tensor& tensor = at(name);
  MUONREC_CHECK(tensor.dtype() == DType::F32, "{}: {} '{}' is {}, expected F32", path, what, name,
                dtype_name(tensor.dtype()));
  const float* values = tensor.data<float>();
  for (int64_t i = 0; i < tensor.numel(); ++i)
    MUONREC_CHECK(std::isfinite(values[i]) && values[i] >= lowest,
                  "{}: {} '{}' holds {} at element {}{} (a damaged file, or a run that diverged)", path, what, name,
                  values[i], i, std::isfinite(values[i]) ? fmt::format(", below {}", lowest) : "");
}

namespace {

// Header sizes beyond this are corrupt files, not real checkpoints.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

// The whole file, once its first 8 bytes (the header length) fit its size: a file of another kind
// (a data file given to --resume) is refused before it is read whole. Sets `header_bytes`.
std::vector<char> read_safetensors_bytes(const std::string& path, uint64_t& header_bytes) {
  MUONREC_CHECK(!std::filesystem::is_directory(path), "{}: is a directory, not a safetensors file", path);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  MUONREC_CHECK(in, "{}: cannot open file", path);
  const std::streamsize size = in.tellg();
  MUONREC_CHECK(size >= 0, "{}: cannot read its size", path);
  const auto file_bytes = static_cast<uint64_t>(size);
  MUONREC_CHECK(file_bytes >= 8, "{}: not a safetensors file ({} bytes, shorter than the 8-byte header length)",
                path, file_bytes);
  in.seekg(0);
  MUONREC_CHECK(in.read(reinterpret_cast<char*>(&header_bytes), 8), "{}: read failed", path);
  MUONREC_CHECK(header_bytes >= 2, "{}: not a safetensors file (its header length {} is too short for a JSON object)",
                path, header_bytes);
  MUONREC_CHECK(header_bytes <= kMaxHeaderBytes && 8 + header_bytes <= file_bytes,
                "{}: not a safetensors file, or a truncated one (its header length {} exceeds the file size {})", path,
                header_bytes, file_bytes);
  in.seekg(0);
  std::vector<char> bytes;
  try {
    bytes.resize(static_cast<size_t>(file_bytes));
  } catch (const std::bad_alloc&) {
    MUONREC_FAIL("{}: not enough memory to read its {} bytes", path, file_bytes);
  }
  MUONREC_CHECK(in.read(bytes.data(), size), "{}: read failed", path);
  return bytes;
}

// The element count of a tensor's shape, refused (naming it) when a dimension is negative or the
// count could not fit in the data section: checked before anything is allocated for it.
int64_t element_count(const std::string& path, const std::string& name, const Shape& shape, size_t data_bytes) {
  for (int64_t s : shape)
    MUONREC_CHECK(s >= 0, "{}: tensor '{}' has a negative dimension in shape {}", path, name, shape_str(shape));
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  uint64_t n = 1;
  for (int64_t s : shape) {
    MUONREC_CHECK(n <= data_bytes / static_cast<uint64_t>(s),
                  "{}: tensor '{}' of shape {} has more elements than the {}-byte data section holds", path, name,
                  shape_str(shape), data_bytes);
    n *= static_cast<uint64_t>(s);
  }
  return static_cast<int64_t>(n);
}

Tensor tensor_from_entry(const std::string& path, const std::string& name, const nlohmann::json& entry,
                         const char* data, size_t data_bytes) {
  MUONREC_CHECK(entry.is_object() && entry.contains("dtype") && entry.contains("shape") && entry.contains("data_offsets"),
                "{}: tensor '{}' lacks dtype, shape or data_offsets", path, name);
  std::string dtype_str = entry["dtype"].get<std::string>();
  const nlohmann::json& shape_entry = entry["shape"];
  // get<Shape> would read 2.9 as 2.
  MUONREC_CHECK(shape_entry.is_array() && std::all_of(shape_entry.begin(), shape_entry.end(),
                                                      [](const nlohmann::json& d) { return d.is_number_integer(); }),
                "{}: tensor '{}' has shape {}, not a list of integers", path, name, shape_entry.dump());
  // get<Shape> would read a dimension of 2^63 or more as a negative one.
  MUONREC_CHECK(std::all_of(shape_entry.begin(), shape_entry.end(),
                            [](const nlohmann::json& d) {
                              return !d.is_number_unsigned() ||
                                     d.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
                            }),
                "{}: tensor '{}' has shape {}, a dimension beyond 2^63 - 1", path, name, shape_entry.dump());
  Shape shape = shape_entry.get<Shape>();
  const nlohmann::json& offsets_entry = entry["data_offsets"];
  // get<uint64_t> would read 4.9 as 4.
  MUONREC_CHECK(offsets_entry.is_array() && std::all_of(offsets_entry.begin(), offsets_entry.end(),
                                                        [](const nlohmann::json& o) { return o.is_number_unsigned(); }),
                "{}: tensor '{}' has data_offsets {}, not a list of byte offsets", path, name, offsets_entry.dump());
  auto offsets = offsets_entry.get<std::vector<uint64_t>>();
  MUONREC_CHECK(offsets.size() == 2 && offsets[0] <= offsets[1] && offsets[1] <= data_bytes,
                "{}: tensor '{}' has data_offsets outside the {}-byte data section (a truncated file?)", path, name,
                data_bytes);
  size_t bytes = offsets[1] - offsets[0];
  const char* src = data + offsets[0];
  const auto numel = static_cast<size_t>(element_count(path, name, shape, data_bytes));
  if (dtype_str == "F64") {
    MUONREC_CHECK(numel <= data_bytes / 8 && bytes == numel * 8, "{}: tensor '{}' has {} bytes for F64 {}", path, name,
                  bytes, shape_str(shape));
    Tensor t = Tensor::empty(shape, DType::F32);
    float* dst = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      double v;
      std::memcpy(&v, src + i * 8, 8);
      dst[i] = static_cast<float>(v);
    }
    return t;
  }
  DType dtype;
  try {
    dtype = dtype_from_safetensors(dtype_str);
  } catch (const Error& e) {
    MUONREC_FAIL("{}: tensor '{}': {}", path, name, e.what());
  }
  const size_t expected = numel * dtype_size(dtype);  // numel <= data_bytes: no overflow
  MUONREC_CHECK(bytes == expected, "{}: tensor '{}' has {} bytes for {} {} ({} expected)", path, name, bytes,
                dtype_str, shape_str(shape), expected);
  Tensor t = Tensor::empty(shape, dtype);
  std::memcpy(t.raw_data(), src, bytes);
  return t;
}

// A first pass over the header, in time linear in its size, for what the format never holds and a
// hostile file could use to exhaust time or memory: objects nested deeper than a tensor entry's
// arrays, more entries than any checkpoint has, a key named twice in one object (JSON allows it and
// nlohmann keeps the last: a hidden tensor or metadata entry).
class HeaderShapeCheck : public nlohmann::json_sax<nlohmann::json> {
 public:
  static constexpr size_t kMaxDepth = 3;  // header { entry { "shape": [ ... ] } }
  static constexpr size_t kMaxEntries = 100000;
  std::string problem;  // "" when none was found

  bool start_object(std::size_t) override { return open(); }
  bool start_array(std::size_t) override { return open(); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& name) override {
    if (keys_.size() == 1 && keys_.front().size() == kMaxEntries)
      return fail(fmt::format("the header has more than {} entries (a damaged file)", kMaxEntries));
    if (!keys_.back().insert(name).second) return fail(fmt::format("header names '{}' twice", name));
    return true;
  }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  std::vector<std::set<std::string>> keys_;  // of each open container (arrays' stay empty)

  bool open() {
    if (keys_.size() == kMaxDepth) return fail(fmt::format("the header nests deeper than {} levels", kMaxDepth));
    keys_.emplace_back();
    return true;
  }
  bool close() {
    keys_.pop_back();
    return true;
  }
  bool fail(std::string why) {
    if (problem.empty()) problem = std::move(why);
    return false;
  }
};

}  // namespace

SafetensorsFile load_safetensors(const std::string& path) {
  uint64_t header_bytes = 0;
  const std::vector<char> bytes = read_safetensors_bytes(path, header_bytes);
  const char* header_begin = bytes.data() + 8;
  const char* header_end = header_begin + header_bytes;
  // nlohmann's lexer reads a NUL as the end of the input: what followed one would go unread.
  MUONREC_CHECK(std::find(header_begin, header_end, '\0') == header_end,
                "{}: the header holds a NUL byte at {} (a damaged file)", path,
                std::find(header_begin, header_end, '\0') - header_begin);
  HeaderShapeCheck shape;
  nlohmann::json::sax_parse(header_begin, header_end, &shape);  // a malformed header: the parse below says how
  MUONREC_CHECK(shape.problem.empty(), "{}: {}", path, shape.problem);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_begin, header_end);
  } catch (const nlohmann::json::exception& e) {
    MUONREC_FAIL("{}: header is not valid JSON: {}", path, e.what());
  } catch (const std::bad_alloc&) {
    MUONREC_FAIL("{}: not enough memory to read its {}-byte header", path, header_bytes);
  }
  MUONREC_CHECK(header.is_object(), "{}: header is not a JSON object", path);
  SafetensorsFile file;
  file.path = path;
  const char* data = bytes.data() + 8 + header_bytes;
  size_t data_bytes = bytes.size() - 8 - header_bytes;
  struct Range {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Range> ranges;
  for (auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      MUONREC_CHECK(entry.is_object(), "{}: __metadata__ is {}, not a map of strings", path, entry.type_name());
      for (auto& [key, value] : entry.items()) {
        MUONREC_CHECK(value.is_string(), "{}: __metadata__ '{}' is {}, not a string", path, key, value.type_name());
        file.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    try {
      file.tensors.emplace(name, tensor_from_entry(path, name, entry, data, data_bytes));
      const auto offsets = entry["data_offsets"].get<std::vector<uint64_t>>();
      ranges.push_back({offsets[0], offsets[1], &name});
    } catch (const nlohmann::json::exception& e) {
      MUONREC_FAIL("{}: tensor '{}' has a malformed header entry: {}", path, name, e.what());
    }
  }
  // The tensors tile the data section, in some order, without overlap or holes (the format's rule):
  // two tensors reading the same bytes would load without a word otherwise.
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  for (const Range& r : ranges) {
    MUONREC_CHECK(r.begin >= covered, "{}: tensor '{}' overlaps the bytes of another tensor (data_offsets [{}, {}])",
                  path, *r.name, r.begin, r.end);
    MUONREC_CHECK(r.begin == covered, "{}: data bytes [{}, {}) belong to no tensor (a hole before tensor '{}')", path,
                  covered, r.begin, *r.name);
    covered = r.end;
  }
  MUONREC_CHECK(covered == data_bytes, "{}: data bytes [{}, {}) belong to no tensor", path, covered, data_bytes);
  return file;
}


void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> host;
  uint64_t offset = 0;
  for (auto& [name, tensor] : tensors) {
    check_defined(tensor, "save_safetensors", name.c_str());
    host.push_back(tensor.to(Device::CPU));
    header[name] = {{"dtype", dtype_name(tensor.dtype())},
                    {"shape", tensor.shape()},
                    {"data_offsets", {offset, offset + tensor.nbytes()}}};
    offset += tensor.nbytes();
  }
  std::string text = json_text(header);
  // Pad the header with spaces to an 8-byte boundary so the data section is aligned.
  text.append((8 - text.size() % 8) % 8, ' ');
  uint64_t header_bytes = text.size();

  std::vector<std::pair<const void*, size_t>> pieces = {{&header_bytes, 8}, {text.data(), text.size()}};
  for (const Tensor& t : host) pieces.emplace_back(t.raw_data(), static_cast<size_t>(t.nbytes()));
  replace_file(path, pieces);
}

}  // namespace muonrec
