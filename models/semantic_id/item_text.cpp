#include "muonrec/models/semantic_id/item_text.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <unordered_map>

#include "muonrec/data/csv.h"
#include "muonrec/data/text_fields.h"
#include "muonrec/engine/error.h"

namespace muonrec::semantic_id {
namespace {

// Ids index tables here: one far beyond the file's length is a damaged or wrong file, refused before
// a table that size is allocated (MovieLens's largest movie id is about 30 times its movie count).
void check_id_fits_the_file(int64_t id, size_t file_lines, const std::string& path, size_t line_no, const char* what) {
  const int64_t bound = 1000000 + 100 * static_cast<int64_t>(file_lines);
  MUONREC_CHECK(id <= bound, "{}:{}: {} {} is implausibly large for a file of {} lines (ids index a table)", path,
                line_no, what, id, file_lines);
}

// Reads every line of a file (a trailing '\r' from Windows line ends is dropped).
std::vector<std::string> read_lines(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  MUONREC_CHECK(in.good(), "cannot open {} file '{}'", what, path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  MUONREC_CHECK(!in.bad(), "read error in {} file '{}'", what, path);
  return lines;
}

bool is_blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t'; });
}

// Splits on runs of spaces/tabs.
std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> fields;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t') ++j;
    if (j > i) fields.push_back(s.substr(i, j - i));
    i = j;
  }
  return fields;
}

// Splits a TSV line on each tab: the names in `muonrec prepare`'s maps may hold spaces.
std::vector<std::string> split_tabs(const std::string& s) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (size_t tab; (tab = s.find('\t', start)) != std::string::npos; start = tab + 1)
    fields.push_back(s.substr(start, tab - start));
  fields.push_back(s.substr(start));
  return fields;
}

int64_t parse_id(const std::string& field, const std::string& path, size_t line_no, const char* what) {
  errno = 0;
  char* end = nullptr;
  long long value = std::strtoll(field.c_str(), &end, 10);
  MUONREC_CHECK(!field.empty() && end == field.c_str() + field.size() && errno == 0,
                "{}:{}: {} '{}' is not an integer", path, line_no, what, field);
  return static_cast<int64_t>(value);
}

}  // namespace

void count_item_texts(const std::vector<std::string>& texts, int64_t unused, ItemTextReport* report) {
  if (report == nullptr) return;
  *report = ItemTextReport{};
  report->n_items = static_cast<int64_t>(texts.size()) - 1;
  for (int64_t i = 1; i <= report->n_items; ++i) {
    if (texts[i].empty()) {
      ++report->missing;
      report->missing_items.push_back(i);
    } else {
      ++report->with_text;
    }
  }
  report->unused_records = unused;
}

std::string ItemTextReport::summary() const {
  std::string first;
  for (size_t i = 0; i < missing_items.size() && i < 10; ++i) first += (i ? "," : "") + std::to_string(missing_items[i]);
  if (missing_items.size() > 10) first += ",...";
  return fmt::format("item texts: {} items, {} with text, {} without{}{}; {} unused records", n_items, with_text,
                     missing, missing ? " (items " : "", missing ? first + ")" : "", unused_records);
}

std::string latin1_to_utf8(const std::string& latin1) {
  std::string out;
  out.reserve(latin1.size() + latin1.size() / 8);
  for (unsigned char c : latin1) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

bool item_id_map_holds_source_ids(const std::string& map_path) {
  for (const std::string& line : read_lines(map_path, "item id map"))
    if (!is_blank(line)) return split_ws(line) == std::vector<std::string>{"item", "source"};
  return false;
}

std::vector<std::string> read_prepared_item_sources(const std::string& map_path) {
  const std::vector<std::string> lines = read_lines(map_path, "prepared items map");
  size_t first = 0;
  while (first < lines.size() && is_blank(lines[first])) ++first;
  const std::vector<std::string> header = first < lines.size() ? split_ws(lines[first]) : std::vector<std::string>{};
  const std::vector<std::string> with_movies = {"item", "source", "movie"}, plain = {"item", "source"};
  MUONREC_CHECK(header == with_movies || header == plain,
                "{}:{}: expected the header 'item<TAB>source' of a map muonrec prepare writes", map_path, first + 1);
  std::vector<std::string> sources;
  for (size_t i = first + 1; i < lines.size(); ++i) {
    if (is_blank(lines[i])) continue;
    const std::vector<std::string> f = split_tabs(lines[i]);
    MUONREC_CHECK(f.size() == header.size(), "{}:{}: expected {} tab-separated fields, got {}", map_path, i + 1,
                  header.size(), f.size());
    const int64_t item = parse_id(f[0], map_path, i + 1, "item id");
    MUONREC_CHECK(item >= 1, "{}:{}: item id {} must be >= 1", map_path, i + 1, item);
    check_id_fits_the_file(item, lines.size(), map_path, i + 1, "item id");
    if (sources.size() <= static_cast<size_t>(item)) sources.resize(static_cast<size_t>(item) + 1);
    MUONREC_CHECK(sources[item].empty(), "{}:{}: item id {} listed twice", map_path, i + 1, item);
    sources[item] = f[1];
  }
  return sources;
}

std::vector<int64_t> read_item_id_map(const std::string& map_path, int64_t n_items) {
  MUONREC_CHECK(n_items >= 0, "read_item_id_map: n_items must be >= 0, got {}", n_items);
  std::vector<std::string> lines = read_lines(map_path, "item id map");
  // `muonrec prepare`'s items map begins with the header 'item<TAB>source', passed over, or
  // 'item<TAB>source<TAB>movie', whose third column (MovieIDs, 0: none) is then the one read.
  bool movie_column = false, prepared = false;
  for (std::string& line : lines) {
    if (is_blank(line)) continue;
    const std::vector<std::string> header = split_ws(line);
    movie_column = header == std::vector<std::string>{"item", "source", "movie"};
    prepared = movie_column || header == std::vector<std::string>{"item", "source"};
    if (prepared) line.clear();
    break;
  }
  const size_t fields = movie_column ? 3 : 2;
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (is_blank(lines[i])) continue;
    std::vector<std::string> f = prepared ? split_tabs(lines[i]) : split_ws(lines[i]);
    MUONREC_CHECK(f.size() == fields, "{}:{}: expected '{}', got {} fields", map_path, i + 1,
                  movie_column ? "item_id source_id movie_id" : "item_id source_id", f.size());
    int64_t item = parse_id(f[0], map_path, i + 1, "item id");
    int64_t source = parse_id(f[fields - 1], map_path, i + 1, movie_column ? "movie id" : "source id");
    MUONREC_CHECK(item >= 1, "{}:{}: item id {} must be >= 1", map_path, i + 1, item);
    MUONREC_CHECK(n_items == 0 || item <= n_items, "{}:{}: item id {} exceeds n_items {}", map_path, i + 1, item,
                  n_items);
    check_id_fits_the_file(item, lines.size(), map_path, i + 1, "item id");
    MUONREC_CHECK(source >= (movie_column ? 0 : 1), "{}:{}: {} id {} must be >= {}", map_path, i + 1,
                  movie_column ? "movie" : "source", source, movie_column ? 0 : 1);
    pairs.emplace_back(item, source);
  }
  int64_t n = n_items;
  for (auto& p : pairs) n = std::max(n, p.first);
  std::vector<int64_t> map(static_cast<size_t>(n) + 1, 0);
  // Line numbers for the duplicate message: the pairs are in file order over non-blank lines.
  std::vector<size_t> line_of(map.size(), 0);
  size_t k = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (is_blank(lines[i])) continue;
    auto [item, source] = pairs[k++];
    MUONREC_CHECK(line_of[item] == 0, "{}:{}: item id {} already mapped on line {}", map_path, i + 1, item,
                  line_of[item]);
    map[item] = source;
    line_of[item] = i + 1;
  }
  return map;
}

namespace {

// ASIN -> title of a Beauty-style titles file. The title is everything after the first run of
// whitespace (possibly empty).
std::unordered_map<std::string, std::string> read_asin_titles(const std::string& asin_titles_path) {
  std::unordered_map<std::string, std::string> titles;
  std::unordered_map<std::string, size_t> title_line;
  std::vector<std::string> lines = read_lines(asin_titles_path, "ASIN titles");
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& s = lines[i];
    if (is_blank(s)) continue;
    size_t a = s.find_first_not_of(" \t");
    size_t b = s.find_first_of(" \t", a);
    std::string asin = s.substr(a, b == std::string::npos ? std::string::npos : b - a);
    std::string title;
    if (b != std::string::npos) {
      size_t t = s.find_first_not_of(" \t", b);
      if (t != std::string::npos) {
        size_t e = s.find_last_not_of(" \t");
        title = s.substr(t, e - t + 1);
      }
    }
    auto [it, inserted] = titles.emplace(asin, std::move(title));
    MUONREC_CHECK(inserted, "{}:{}: ASIN '{}' already has a title on line {}", asin_titles_path, i + 1, asin,
                  title_line[asin]);
    title_line[asin] = i + 1;
  }
  return titles;
}

}  // namespace

std::vector<std::string> join_texts_by_name(const std::unordered_map<std::string, std::string>& texts_by_name,
                                            const std::vector<std::string>& item_names, ItemTextReport* report) {
  std::vector<std::string> texts(item_names.size());
  int64_t used = 0;
  for (size_t item = 1; item < item_names.size(); ++item) {
    auto it = texts_by_name.find(item_names[item]);
    if (it == texts_by_name.end()) continue;
    texts[item] = it->second;
    ++used;
  }
  count_item_texts(texts, static_cast<int64_t>(texts_by_name.size()) - used, report);
  return texts;
}

std::vector<std::string> load_titles_by_asin(const std::string& asin_titles_path,
                                             const std::vector<std::string>& item_asins, ItemTextReport* report) {
  return join_texts_by_name(read_asin_titles(asin_titles_path), item_asins, report);
}

std::unordered_map<int64_t, std::string> read_item_asins(const std::string& item_asin_path, int64_t max_id,
                                                         int64_t* beyond_max) {
  MUONREC_CHECK(max_id >= 0, "read_item_asins: max_id must be >= 0, got {}", max_id);
  if (beyond_max) *beyond_max = 0;
  std::vector<std::string> lines = read_lines(item_asin_path, "item ASIN");
  std::unordered_map<int64_t, std::string> asins;
  std::unordered_map<int64_t, size_t> id_line;
  std::unordered_map<std::string, size_t> asin_line;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (is_blank(lines[i])) continue;
    std::vector<std::string> f = split_ws(lines[i]);
    MUONREC_CHECK(f.size() == 2, "{}:{}: expected 'item_id ASIN', got {} fields", item_asin_path, i + 1, f.size());
    const int64_t item = parse_id(f[0], item_asin_path, i + 1, "item id");
    MUONREC_CHECK(item >= 1, "{}:{}: item id {} must be >= 1", item_asin_path, i + 1, item);
    if (beyond_max && max_id > 0 && item > max_id) {
      ++*beyond_max;
      continue;
    }
    MUONREC_CHECK(max_id == 0 || item <= max_id, "{}:{}: item id {} exceeds n_items {}", item_asin_path, i + 1, item,
                  max_id);
    check_id_fits_the_file(item, lines.size(), item_asin_path, i + 1, "item id");
    auto [previous, fresh_id] = id_line.emplace(item, i + 1);
    MUONREC_CHECK(fresh_id, "{}:{}: item id {} already listed on line {}", item_asin_path, i + 1, item,
                  previous->second);
    auto [other, fresh_asin] = asin_line.emplace(f[1], i + 1);
    MUONREC_CHECK(fresh_asin, "{}:{}: ASIN '{}' already given to another item on line {}", item_asin_path, i + 1,
                  f[1], other->second);
    asins.emplace(item, f[1]);
  }
  return asins;
}

std::vector<std::string> load_asin_item_texts(const std::string& item_asin_path, const std::string& asin_titles_path,
                                              int64_t n_items, ItemTextReport* report) {
  MUONREC_CHECK(n_items >= 0, "load_asin_item_texts: n_items must be >= 0, got {}", n_items);
  const std::unordered_map<int64_t, std::string> asins = read_item_asins(item_asin_path, n_items);
  int64_t n = n_items;
  for (const auto& [item, asin] : asins) n = std::max(n, item);
  std::vector<std::string> item_asins(static_cast<size_t>(n) + 1);
  for (const auto& [item, asin] : asins) item_asins[static_cast<size_t>(item)] = asin;
  return load_titles_by_asin(asin_titles_path, item_asins, report);
}

namespace {

// Records one movie of line `line_no`: checks its id and that it is new.
void add_movie(std::vector<MovieRecord>& movies, int64_t id, std::string title, std::string genres,
               const std::string& movies_path, size_t line_no, size_t file_lines, const char* id_name) {
  MUONREC_CHECK(id >= 1, "{}:{}: {} {} must be >= 1", movies_path, line_no, id_name, id);
  check_id_fits_the_file(id, file_lines, movies_path, line_no, id_name);
  if (static_cast<int64_t>(movies.size()) <= id) movies.resize(static_cast<size_t>(id) + 1);
  MUONREC_CHECK(!movies[id].present, "{}:{}: {} {} listed twice", movies_path, line_no, id_name, id);
  movies[id] = MovieRecord{std::move(title), std::move(genres), true};
}

// movies.dat: 'MovieID::Title::Genres', ISO-8859-1.
void parse_movies_dat(const std::vector<std::string>& lines, const std::string& movies_path,
                      std::vector<MovieRecord>& movies) {
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& s = lines[i];
    if (is_blank(s)) continue;
    // The title may itself contain ':' but not '::'; the genres come after the last '::'.
    size_t first = s.find("::");
    size_t last = s.rfind("::");
    MUONREC_CHECK(first != std::string::npos && last != first,
                  "{}:{}: expected 'MovieID::Title::Genres', got '{}'", movies_path, i + 1, latin1_to_utf8(s));
    add_movie(movies, parse_id(s.substr(0, first), movies_path, i + 1, "MovieID"),
              latin1_to_utf8(s.substr(first + 2, last - first - 2)), latin1_to_utf8(s.substr(last + 2)), movies_path,
              i + 1, lines.size(), "MovieID");
  }
}

// movies.csv (ml-latest, ml-25m...): a 'movieId,title,genres' header, UTF-8, titles quoted where
// they hold a comma.
void parse_movies_csv(const std::vector<std::string>& lines, const std::string& movies_path,
                      std::vector<MovieRecord>& movies) {
  std::vector<std::string_view> fields;
  std::deque<std::string> unescaped;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (is_blank(lines[i])) continue;
    const data::Where where{movies_path, static_cast<int64_t>(i + 1)};
    unescaped.clear();
    data::split_delimited(lines[i], ',', fields, unescaped, where);
    if (fields.size() != 3) where.fail(fmt::format("expected movieId,title,genres, got {} fields", fields.size()));
    add_movie(movies, parse_id(std::string(fields[0]), movies_path, i + 1, "movieId"), std::string(fields[1]),
              std::string(fields[2]), movies_path, i + 1, lines.size(), "movieId");
  }
}

}  // namespace

std::vector<MovieRecord> read_movies(const std::string& movies_path) {
  const std::vector<std::string> lines = read_lines(movies_path, "movies");
  std::vector<MovieRecord> movies;
  if (!lines.empty() && lines[0].rfind("movieId,title,genres", 0) == 0)
    parse_movies_csv(lines, movies_path, movies);
  else
    parse_movies_dat(lines, movies_path, movies);
  return movies;
}

std::vector<std::string> load_movielens_item_texts(const std::string& movies_path,
                                                   const std::vector<int64_t>& item_to_movie,
                                                   const MovieTextOptions& options, ItemTextReport* report) {
  MUONREC_CHECK(!item_to_movie.empty(), "load_movielens_item_texts: item_to_movie must have n_items + 1 entries");
  std::vector<MovieRecord> movies = read_movies(movies_path);
  std::vector<std::string> texts(item_to_movie.size());
  std::vector<char> used(movies.size(), 0);
  for (size_t item = 1; item < item_to_movie.size(); ++item) {
    int64_t id = item_to_movie[item];
    if (id <= 0 || id >= static_cast<int64_t>(movies.size()) || !movies[id].present) continue;
    const MovieRecord& m = movies[id];
    std::string text = m.title;
    if (options.append_genres && !m.genres.empty() && m.genres != "(no genres listed)") {
      std::string g = m.genres;
      std::replace(g.begin(), g.end(), '|', ' ');
      text += (text.empty() ? "" : " ") + g;
    }
    texts[item] = std::move(text);
    used[id] = 1;
  }
  int64_t unused = 0;
  for (size_t id = 0; id < movies.size(); ++id) unused += movies[id].present && !used[id];
  count_item_texts(texts, unused, report);
  return texts;
}

std::vector<std::string> load_movielens_item_texts_identity(const std::string& movies_path, int64_t n_items,
                                                            const MovieTextOptions& options,
                                                            ItemTextReport* report) {
  MUONREC_CHECK(n_items >= 0, "load_movielens_item_texts_identity: n_items must be >= 0, got {}", n_items);
  int64_t n = n_items;
  if (n == 0) n = static_cast<int64_t>(read_movies(movies_path).size()) - 1;
  MUONREC_CHECK(n >= 1, "{}: no movies found", movies_path);
  std::vector<int64_t> identity(static_cast<size_t>(n) + 1);
  for (int64_t i = 0; i <= n; ++i) identity[i] = i;
  return load_movielens_item_texts(movies_path, identity, options, report);
}

std::vector<std::string> load_movielens_item_texts_mapped(const std::string& movies_path, const std::string& map_path,
                                                          int64_t n_items, const MovieTextOptions& options,
                                                          ItemTextReport* report) {
  return load_movielens_item_texts(movies_path, read_item_id_map(map_path, n_items), options, report);
}

}  // namespace muonrec::semantic_id
