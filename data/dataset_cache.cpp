#include "muonrec/data/dataset_cache.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "muonrec/data/text_fields.h"
#include "muonrec/engine/error.h"

namespace muonrec::data {
namespace {

// Bump when the entry layout, a reader or preprocessing changes what a file reads as: older
// entries then miss instead of loading results the engine would no longer produce.
// 4: rows of empty tab-separated fields and a repeated header behind a byte-order mark refused; a
// k-core's users need the split's minimum; repeated events and items lost with short users counted.
// 5: fractions of a second order a user's events; tokens holding a tab or a line break refused.
constexpr int kCacheVersion = 5;
constexpr char kMagic[] = "muonrec dataset\n";  // 16 bytes
constexpr size_t kMagicSize = sizeof(kMagic) - 1;

uint64_t mix64(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class ByteWriter {
 public:
  void u64(uint64_t value) { out_.append(reinterpret_cast<const char*>(&value), sizeof(value)); }
  void i64s(const std::vector<int64_t>& values) {
    u64(values.size());
    out_.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(int64_t));
  }
  void text(std::string_view value) {
    u64(value.size());
    out_.append(value.data(), value.size());
  }
  void texts(const std::vector<std::string>& values) {
    u64(values.size());
    for (const std::string& value : values) text(value);
  }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

// Reads what ByteWriter wrote; running past the end, or a count larger than what is left, is a
// damaged entry.
class ByteReader {
 public:
  ByteReader(std::string_view bytes, const std::string& file) : in_(bytes), file_(file) {}

  uint64_t u64() {
    uint64_t value = 0;
    std::memcpy(&value, take(sizeof(value)), sizeof(value));
    return value;
  }
  std::vector<int64_t> i64s() {
    const uint64_t count = u64();
    const char* at = take_array(count, sizeof(int64_t));  // checked before anything is allocated
    std::vector<int64_t> values(count);
    std::memcpy(values.data(), at, count * sizeof(int64_t));
    return values;
  }
  // count values of `unit` bytes, in place (unaligned: copy them out with memcpy).
  const char* take_array(uint64_t count, uint64_t unit) {
    need(count, unit);
    return take(count * unit);
  }
  std::string text() {
    const uint64_t size = u64();
    return std::string(take_array(size, 1), size);
  }
  std::vector<std::string> texts() {
    const uint64_t count = u64();
    need(count, sizeof(uint64_t));  // each text has at least its length
    std::vector<std::string> values(count);
    for (std::string& value : values) value = text();
    return values;
  }
  void expect_end() const {
    if (pos_ != in_.size()) damaged(fmt::format("{} bytes past the end of the entry", in_.size() - pos_));
  }
  [[noreturn]] void damaged(const std::string& what) const {
    MUONREC_FAIL("{}: damaged dataset cache entry ({})", file_, what);
  }

 private:
  void need(uint64_t count, uint64_t unit) const {
    if (count > (in_.size() - pos_) / unit) damaged(fmt::format("truncated at byte {}", pos_));
  }
  const char* take(size_t bytes) {
    need(bytes, 1);
    const char* at = in_.data() + pos_;
    pos_ += bytes;
    return at;
  }
  std::string_view in_;
  const std::string& file_;
  size_t pos_ = 0;
};

nlohmann::json report_to_json(const ReadReport& r) {
  return {{"lines", r.lines},
          {"blank_lines", r.blank_lines},
          {"users_dropped_short", r.users_dropped_short},
          {"events_dropped", r.events_dropped},
          {"items_dropped_short", r.items_dropped_short},
          {"repeated_events", r.repeated_events},
          {"min_events_per_user", r.min_events_per_user},
          {"dedupe", r.preprocessing.dedupe},
          {"k_core", r.preprocessing.k_core},
          {"duplicates_dropped", r.preprocessed.duplicates_dropped},
          {"k_core_user_minimum", r.preprocessed.k_core_user_minimum},
          {"k_core_rounds", r.preprocessed.k_core_rounds},
          {"k_core_users_dropped", r.preprocessed.k_core_users_dropped},
          {"k_core_items_dropped", r.preprocessed.k_core_items_dropped},
          {"k_core_events_dropped", r.preprocessed.k_core_events_dropped},
          {"largest_file_item", r.largest_file_item},
          {"unused_item_ids", r.unused_item_ids},
          {"string_tokens", r.string_tokens}};
}

ReadReport report_from_json(const nlohmann::json& j) {
  ReadReport r;
  r.lines = j.at("lines");
  r.blank_lines = j.at("blank_lines");
  r.users_dropped_short = j.at("users_dropped_short");
  r.events_dropped = j.at("events_dropped");
  r.items_dropped_short = j.at("items_dropped_short");
  r.repeated_events = j.at("repeated_events");
  r.min_events_per_user = j.at("min_events_per_user");
  r.preprocessing.dedupe = j.at("dedupe");
  r.preprocessing.k_core = j.at("k_core");
  r.preprocessed.duplicates_dropped = j.at("duplicates_dropped");
  r.preprocessed.k_core_user_minimum = j.at("k_core_user_minimum");
  r.preprocessed.k_core_rounds = j.at("k_core_rounds");
  r.preprocessed.k_core_users_dropped = j.at("k_core_users_dropped");
  r.preprocessed.k_core_items_dropped = j.at("k_core_items_dropped");
  r.preprocessed.k_core_events_dropped = j.at("k_core_events_dropped");
  r.largest_file_item = j.at("largest_file_item");
  r.unused_item_ids = j.at("unused_item_ids");
  r.string_tokens = j.at("string_tokens");
  return r;
}

// Sequences (and timestamps) as one length per user and the items of all users end to end.
void write_rows(ByteWriter& out, const std::vector<std::vector<int64_t>>& rows) {
  std::vector<int64_t> lengths, flat;
  lengths.reserve(rows.size());
  for (const auto& row : rows) {
    lengths.push_back(static_cast<int64_t>(row.size()));
    flat.insert(flat.end(), row.begin(), row.end());
  }
  out.i64s(lengths);
  out.i64s(flat);
}

std::vector<std::vector<int64_t>> read_rows(ByteReader& in) {
  const std::vector<int64_t> lengths = in.i64s();
  const uint64_t values = in.u64();
  const char* flat = in.take_array(values, sizeof(int64_t));
  std::vector<std::vector<int64_t>> rows(lengths.size());
  uint64_t at = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto length = static_cast<uint64_t>(lengths[r]);
    if (lengths[r] < 0 || length > values - at) in.damaged(fmt::format("row {} runs past its values", r));
    rows[r].resize(length);
    std::memcpy(rows[r].data(), flat + at * sizeof(int64_t), length * sizeof(int64_t));
    at += length;
  }
  if (at != values) in.damaged("values left over after the last row");
  return rows;
}

}  // namespace

std::string default_dataset_cache_dir() {
  if (const char* chosen = std::getenv("MUONREC_DATA_CACHE"); chosen && *chosen) {
    // The ways people write "no" turn it off, rather than making a cache directory called "0".
    const std::string value = chosen;
    for (const char* off : {"off", "0", "none", "no", "false"})
      if (value == off) return "";
    return value;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/muonrec/data";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/muonrec/data";
  return "";
}

int dataset_cache_version() { return kCacheVersion; }

uint64_t content_hash(std::string_view text) {
  uint64_t h = mix64(text.size() ^ 0x9E3779B97F4A7C15ull);
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    h = (h ^ (word * 0x9FB21C651E98DF25ull)) * 0xC2B2AE3D27D4EB4Full;
    h = (h << 29) | (h >> 35);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, text.data() + i, text.size() - i);
  return mix64(h ^ tail);
}

std::string dataset_cache_key(std::string_view text, const ReadOptions& options, Format format_read) {
  // JSON keeps every field delimited (a csv_columns value cannot run into the next field).
  const nlohmann::json key = {{"version", kCacheVersion},
                              {"bytes", text.size()},
                              {"hash", fmt::format("{:016x}", content_hash(text))},
                              {"format", format_name(options.format)},
                              {"format_read", format_name(format_read)},
                              {"min_events_per_user", options.min_events_per_user},
                              {"dedupe", options.preprocessing.dedupe},
                              {"k_core", options.preprocessing.k_core},
                              {"csv_columns", options.csv_columns}};
  return key.dump();
}

std::string dataset_cache_path(const std::string& dir, const std::string& key) {
  return fmt::format("{}/{:016x}.dataset", dir, content_hash(key));
}

std::optional<SequenceDataset> load_cached_dataset(const std::string& file, const std::string& key) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return std::nullopt;
  const FileText entry(file);
  const std::string_view bytes = entry.view();
  if (bytes.substr(0, kMagicSize) != kMagic)
    MUONREC_FAIL("{}: not a dataset cache entry", file);
  // The magic, the payload's checksum, then the payload (which opens with the key).
  ByteReader header(bytes.substr(kMagicSize), file);
  const uint64_t checksum = header.u64();
  const std::string_view payload = bytes.substr(kMagicSize + sizeof(uint64_t));
  if (content_hash(payload) != checksum) header.damaged("its checksum does not match its contents");
  ByteReader in(payload, file);
  if (in.text() != key) return std::nullopt;  // another file's bytes or options under the same name
  SequenceDataset ds;
  ds.source = in.text();
  ds.format = parse_format(in.text());
  ds.n_items = static_cast<int64_t>(in.u64());
  ds.sequences = read_rows(in);
  ds.timestamps = read_rows(in);
  ds.user_ids = in.i64s();
  ds.item_source_ids = in.i64s();
  ds.user_tokens = in.texts();
  ds.item_tokens = in.texts();
  try {
    ds.report = report_from_json(nlohmann::json::parse(in.text()));
  } catch (const nlohmann::json::exception& e) {
    in.damaged(fmt::format("its read report: {}", e.what()));
  }
  in.expect_end();
  const size_t users = ds.sequences.size();
  if (ds.n_items < 0 || ds.user_ids.size() != users || (ds.has_timestamps() && ds.timestamps.size() != users) ||
      ds.item_source_ids.size() != static_cast<size_t>(ds.n_items + 1))
    in.damaged("its parts disagree on the number of users or items");
  return ds;
}

void store_cached_dataset(const std::string& file, const std::string& key, const SequenceDataset& ds) {
  ByteWriter out;
  out.text(key);
  out.text(ds.source);
  out.text(format_name(ds.format));
  out.u64(static_cast<uint64_t>(ds.n_items));
  write_rows(out, ds.sequences);
  write_rows(out, ds.timestamps);
  out.i64s(ds.user_ids);
  out.i64s(ds.item_source_ids);
  out.texts(ds.user_tokens);
  out.texts(ds.item_tokens);
  out.text(report_to_json(ds.report).dump());

  const std::filesystem::path path(file);
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  MUONREC_CHECK(!ec, "cannot create the dataset cache directory {}: {}", path.parent_path().string(), ec.message());
  // A name no other writer of this entry uses: threads of one process share the pid, and hosts
  // sharing a cache directory may share pids too.
  const uint64_t nonce = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  const std::string temporary = fmt::format("{}.{}.{:016x}.tmp", file, static_cast<long>(::getpid()), nonce);
  {
    std::ofstream f(temporary, std::ios::binary | std::ios::trunc);
    MUONREC_CHECK(f.good(), "cannot write the dataset cache entry {}: {}", temporary, std::strerror(errno));
    const uint64_t checksum = content_hash(out.bytes());
    f.write(kMagic, kMagicSize);
    f.write(reinterpret_cast<const char*>(&checksum), sizeof(checksum));
    f.write(out.bytes().data(), static_cast<std::streamsize>(out.bytes().size()));
    f.close();
    if (!f) {
      std::filesystem::remove(temporary, ec);
      MUONREC_FAIL("cannot write the dataset cache entry {} (disk full?)", temporary);
    }
  }
  std::filesystem::rename(temporary, path, ec);
  if (ec) {
    const std::string reason = ec.message();
    std::filesystem::remove(temporary, ec);
    MUONREC_FAIL("cannot move the dataset cache entry into place at {}: {}", file, reason);
  }
}

}  // namespace muonrec::data
