// Item texts for semantic IDs: one string per dense item id (index 0, the padding id, stays empty),
// read from the side files that come with the benchmark datasets:
//   Beauty     item_id -> ASIN ('item_id ASIN' per line) and ASIN -> title ('ASIN title words...'
//              per line; the title may be empty)
//   MovieLens  movies.dat 'MovieID::Title (Year)::Genre|Genre' (ISO-8859-1, transcoded to UTF-8)
//              or movies.csv ('movieId,title,genres', UTF-8), joined to the dataset's item ids either
//              by identity (item id == MovieID) or through a map file ('item_id MovieID' per line,
//              e.g. sas_to_original_items.txt) or vector.
// An item with no text gets "" and is counted in the report: nothing is dropped silently. Malformed
// lines throw muonrec::Error naming the file and the 1-based line.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace muonrec::semantic_id {

struct ItemTextReport {
  int64_t n_items = 0;                // texts has n_items + 1 entries
  int64_t with_text = 0;              // items whose text is non-empty
  int64_t missing = 0;                // items left with "" (no mapping, no title, or an empty title)
  std::vector<int64_t> missing_items; // their ids, ascending
  int64_t unused_records = 0;         // title/movie records that no item refers to
  std::string summary() const;        // one line, e.g. for the CLI log
};
// Fills *report (when given) for texts [n_items + 1] (index 0 unused) and `unused` records.
void count_item_texts(const std::vector<std::string>& texts, int64_t unused, ItemTextReport* report);

// Beauty-style files. n_items = 0 takes the largest item id of the ASIN file; a positive n_items
// must cover every id in it (ids outside 1..n_items are an error, as are duplicate ids or ASINs).
std::vector<std::string> load_asin_item_texts(const std::string& item_asin_path, const std::string& asin_titles_path,
                                              int64_t n_items = 0, ItemTextReport* report = nullptr);

// The 'item_id ASIN' lines of a Beauty-style id file: id -> ASIN. Ids must be >= 1 and, when
// max_id > 0, at most max_id; an id or an ASIN given twice is an error naming both lines. With
// `beyond_max`, ids past max_id are skipped and counted there instead (the id file of a whole
// catalogue read for data that holds part of it: a sample of its users).
std::unordered_map<int64_t, std::string> read_item_asins(const std::string& item_asin_path, int64_t max_id = 0,
                                                         int64_t* beyond_max = nullptr);

// texts[item] = texts_by_name[item_names[item]] for items 1..n (item_names [n + 1], index 0 unused),
// "" where the table has no such name; the report counts the table's names no item took.
std::vector<std::string> join_texts_by_name(const std::unordered_map<std::string, std::string>& texts_by_name,
                                            const std::vector<std::string>& item_names,
                                            ItemTextReport* report = nullptr);

// Titles of items named by their ASINs (a RecBole file's string item tokens): item_asins
// [n_items + 1] (index 0 unused) -> texts of the same size, "" where the titles file has none.
std::vector<std::string> load_titles_by_asin(const std::string& asin_titles_path,
                                             const std::vector<std::string>& item_asins,
                                             ItemTextReport* report = nullptr);

struct MovieTextOptions {
  // Append the genres as words after the title ("Toy Story (1995) Animation Children's Comedy"), so
  // the tokenizer sees them like any other word. The year stays in the title as a token.
  bool append_genres = true;
};

// The movies of a MovieLens movies.dat ('MovieID::Title::Genres', ISO-8859-1 bytes transcoded to
// UTF-8) or movies.csv (a 'movieId,title,genres' header, then UTF-8 rows, quoted titles), by id.
// Index = the id, size = the largest id + 1; ids absent from the file are not present. Title and
// genres are kept apart.
struct MovieRecord {
  std::string title;
  std::string genres;  // 'Genre|Genre' as in the file
  bool present = false;
};
std::vector<MovieRecord> read_movies(const std::string& movies_path);

// item_to_movie[item] = MovieID for item in 1..n_items (index 0 ignored; 0 or negative = none).
std::vector<std::string> load_movielens_item_texts(const std::string& movies_path,
                                                   const std::vector<int64_t>& item_to_movie,
                                                   const MovieTextOptions& options = {},
                                                   ItemTextReport* report = nullptr);

// Identity ids (item id == MovieID); n_items = 0 takes the largest MovieID in the file.
std::vector<std::string> load_movielens_item_texts_identity(const std::string& movies_path, int64_t n_items = 0,
                                                            const MovieTextOptions& options = {},
                                                            ItemTextReport* report = nullptr);

// Through a map file 'item_id MovieID' per line (sas_to_original_items.txt, or `muonrec prepare`'s
// PREFIX_items.tsv, whose 'item source' header is passed over). n_items = 0 takes the largest item id
// of the map file.
std::vector<std::string> load_movielens_item_texts_mapped(const std::string& movies_path, const std::string& map_path,
                                                          int64_t n_items = 0, const MovieTextOptions& options = {},
                                                          ItemTextReport* report = nullptr);

// 'item_id source_id' per line -> vector [n_items + 1] (index 0 = 0; unmapped ids = 0). n_items = 0
// takes the largest item id. Duplicate or out-of-range item ids throw naming the file and line. A
// prepared items map with the header 'item source movie' gives its third column, the MovieIDs.
std::vector<int64_t> read_item_id_map(const std::string& map_path, int64_t n_items = 0);
// Whether that map is a prepared items map without the movie column: its values are then the source's
// own ids, MovieIDs only where the source was a MovieLens file.
bool item_id_map_holds_source_ids(const std::string& map_path);
// `muonrec prepare`'s PREFIX_items.tsv ('item source' or 'item source movie' header) -> the source
// column as written (the source's own id or token of each item), indexed by the prepared item id
// [largest id + 1] ("" where no line names the id). A missing header, a short line or an item id
// listed twice throws naming the file and line.
std::vector<std::string> read_prepared_item_sources(const std::string& map_path);

// ISO-8859-1 bytes -> UTF-8 (every byte >= 0x80 becomes two bytes).
std::string latin1_to_utf8(const std::string& latin1);

}  // namespace muonrec::semantic_id
