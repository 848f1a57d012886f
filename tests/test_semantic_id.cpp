// Semantic IDs: item texts (Beauty titles, MovieLens movies.dat), TF-IDF and its dense projection,
// the RQ-KMeans tokenizer, the prefix trie and constrained beam search, plus the real Beauty data
// end to end when shared/ is present. Small input files are written by the tests into a fresh
// temporary directory; nothing from shared/data is copied.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include "muonrec/engine/error.h"
#include "muonrec/engine/rng.h"
#include "muonrec/engine/safetensors.h"
#include "muonrec/models/semantic_id/beam_search.h"
#include "muonrec/models/semantic_id/item_text.h"
#include "muonrec/models/semantic_id/prefix_trie.h"
#include "muonrec/models/semantic_id/rq_kmeans.h"
#include "muonrec/models/semantic_id/tfidf.h"
#include "semantic_id_testkit.h"
#include "test_util.h"

namespace muonrec::semantic_id {
namespace {

namespace fs = std::filesystem;

using testkit::expect_error;
using testkit::TempDir;
using testkit::clustered_data;
using testkit::expect_unique_codes;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---------------------------------------------------------------------------------------------
// Item texts

TEST(SemanticIdText, AsinTitlesByItemId) {
  TempDir dir;
  const std::string asin = dir.write("items.txt", "1 A1\n2 A2\r\n\n3 A3\n4 A4\n");
  const std::string titles = dir.write("titles.txt",
                                       "A2 second item title\n"
                                       "A1 first   title  \n"
                                       "A4 \n"
                                       "A9 never used\n");
  ItemTextReport report;
  std::vector<std::string> texts = load_asin_item_texts(asin, titles, 5, &report);
  ASSERT_EQ(texts.size(), 6u);
  EXPECT_EQ(texts[0], "");
  EXPECT_EQ(texts[1], "first   title");
  EXPECT_EQ(texts[2], "second item title");
  EXPECT_EQ(texts[3], "");  // ASIN without a title line
  EXPECT_EQ(texts[4], "");  // empty title
  EXPECT_EQ(texts[5], "");  // no ASIN line
  EXPECT_EQ(report.n_items, 5);
  EXPECT_EQ(report.with_text, 2);
  EXPECT_EQ(report.missing, 3);
  EXPECT_EQ(report.missing_items, (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(report.unused_records, 1);
  EXPECT_NE(report.summary().find("3 without"), std::string::npos) << report.summary();

  // n_items = 0 takes the largest id of the ASIN file.
  EXPECT_EQ(load_asin_item_texts(asin, titles).size(), 5u);
}

// MovieLens' newer releases ship movies.csv: a header, UTF-8, titles quoted where they hold a comma
// (a doubled quote inside), and ids with gaps.
TEST(SemanticIdText, ReadsMoviesCsvLikeMoviesDat) {
  TempDir dir;
  const std::string csv =
      dir.write("movies.csv",
                "movieId,title,genres\r\n"
                "1,Toy Story (1995),Adventure|Animation\r\n"
                "11,\"American President, The (1995)\",Comedy|Drama\r\n"
                "12,\"Dracula: Dead and \"\"Loving\"\" It (1995)\",(no genres listed)\r\n"
                "13,Léon (1994),Crime\r\n");
  const std::vector<MovieRecord> movies = read_movies(csv);
  ASSERT_EQ(movies.size(), 14u);
  EXPECT_FALSE(movies[2].present);
  EXPECT_EQ(movies[1].title, "Toy Story (1995)");
  EXPECT_EQ(movies[1].genres, "Adventure|Animation");
  EXPECT_EQ(movies[11].title, "American President, The (1995)");
  EXPECT_EQ(movies[12].title, "Dracula: Dead and \"Loving\" It (1995)");
  EXPECT_EQ(movies[13].title, "Léon (1994)");  // UTF-8 as it is, where movies.dat is Latin-1
  MovieTextOptions options;
  const std::vector<std::string> texts = load_movielens_item_texts(csv, {0, 11, 1, 12, 5}, options);
  EXPECT_EQ(texts, (std::vector<std::string>{"", "American President, The (1995) Comedy Drama",
                                             "Toy Story (1995) Adventure Animation",
                                             "Dracula: Dead and \"Loving\" It (1995)", ""}));
}

TEST(SemanticIdText, BadInputNamesFileAndLine) {
  TempDir dir;
  const std::string titles = dir.write("titles.txt", "A1 x\nA2 y\n");
  const std::string three = dir.write("three.txt", "1 A1\n2 A2 extra\n");
  expect_error([&] { load_asin_item_texts(three, titles); }, {"three.txt:2", "fields"});
  const std::string word = dir.write("word.txt", "1 A1\none A2\n");
  expect_error([&] { load_asin_item_texts(word, titles); }, {"word.txt:2", "not an integer"});
  const std::string dup = dir.write("dup.txt", "1 A1\n1 A2\n");
  expect_error([&] { load_asin_item_texts(dup, titles); }, {"dup.txt:2", "already listed on line 1"});
  const std::string dup_asin = dir.write("dup_asin.txt", "1 A1\n2 A1\n");
  expect_error([&] { load_asin_item_texts(dup_asin, titles); }, {"dup_asin.txt:2", "ASIN 'A1'"});
  const std::string zero = dir.write("zero.txt", "0 A1\n");
  expect_error([&] { load_asin_item_texts(zero, titles); }, {"zero.txt:1", ">= 1"});
  const std::string ok = dir.write("ok.txt", "1 A1\n3 A2\n");
  expect_error([&] { load_asin_item_texts(ok, titles, 2); }, {"ok.txt:2", "exceeds n_items 2"});
  const std::string dup_title = dir.write("dup_title.txt", "A1 x\nA1 y\n");
  expect_error([&] { load_asin_item_texts(ok, dup_title); }, {"dup_title.txt:2", "line 1"});
  expect_error([&] { load_asin_item_texts(dir.path("missing.txt"), titles); }, {"missing.txt"});

  const std::string movies = dir.write("movies.dat", "1::Toy Story (1995)::Animation\n2 Jumanji\n");
  expect_error([&] { read_movies(movies); }, {"movies.dat:2", "MovieID::Title::Genres"});
  const std::string movies_dup = dir.write("movies_dup.dat", "1::A::Drama\n1::B::Drama\n");
  expect_error([&] { read_movies(movies_dup); }, {"movies_dup.dat:2", "listed twice"});
  const std::string csv_fields = dir.write("movies_fields.csv", "movieId,title,genres\n1,Toy Story,Animation,x\n");
  expect_error([&] { read_movies(csv_fields); }, {"movies_fields.csv, line 2", "expected movieId,title,genres"});
  const std::string csv_dup = dir.write("movies_dup.csv", "movieId,title,genres\n1,A,Drama\n\n1,B,Drama\n");
  expect_error([&] { read_movies(csv_dup); }, {"movies_dup.csv:4", "movieId 1 listed twice"});
  const std::string csv_quote = dir.write("movies_quote.csv", "movieId,title,genres\n1,\"A, open,Drama\n");
  expect_error([&] { read_movies(csv_quote); }, {"movies_quote.csv, line 2"});
  const std::string map_bad = dir.write("map.txt", "1 5\n2\n");
  expect_error([&] { read_item_id_map(map_bad); }, {"map.txt:2", "fields"});
  const std::string map_dup = dir.write("map_dup.txt", "1 5\n1 6\n");
  expect_error([&] { read_item_id_map(map_dup); }, {"map_dup.txt:2", "already mapped on line 1"});
  // Ids index tables: one no file of this length numbers is refused before its table is allocated.
  const std::string map_huge = dir.write("map_huge.txt", "1 5\n99999999999 7\n");
  expect_error([&] { read_item_id_map(map_huge); },
               {"map_huge.txt:2", "item id 99999999999 is implausibly large for a file of 2 lines"});
  const std::string asin_huge = dir.write("asin_huge.txt", "1 A1\n99999999999 A2\n");
  expect_error([&] { load_asin_item_texts(asin_huge, titles); }, {"asin_huge.txt:2", "implausibly large"});
  const std::string movies_huge = dir.write("movies_huge.dat", "1::A::Drama\n90000000::B::Drama\n");
  expect_error([&] { read_movies(movies_huge); },
               {"movies_huge.dat:2", "MovieID 90000000 is implausibly large for a file of 2 lines"});
}

TEST(SemanticIdText, MovieLensLatin1GenresAndMapping) {
  TempDir dir;
  // 0xE9 is Latin-1 'é'; it must come out as UTF-8 (C3 A9) and stay inside its word.
  const std::string movies = dir.write("movies.dat",
                                       "1::Toy Story (1995)::Animation|Children's|Comedy\n"
                                       "3::Mis\xe9rables, Les (1995)::Drama|Musical\n"
                                       "4::Title: With Colon (2000)::Film-Noir\n");
  ItemTextReport report;
  std::vector<std::string> id = load_movielens_item_texts_identity(movies, 0, {}, &report);
  ASSERT_EQ(id.size(), 5u);
  EXPECT_EQ(id[1], "Toy Story (1995) Animation Children's Comedy");
  EXPECT_EQ(id[2], "");
  EXPECT_EQ(id[3], "Mis\xc3\xa9rables, Les (1995) Drama Musical");
  EXPECT_EQ(id[4], "Title: With Colon (2000) Film-Noir");
  EXPECT_EQ(report.missing_items, (std::vector<int64_t>{2}));

  MovieTextOptions no_genres;
  no_genres.append_genres = false;
  EXPECT_EQ(load_movielens_item_texts_identity(movies, 0, no_genres)[1], "Toy Story (1995)");

  std::vector<std::string> tokens = tokenize(id[3]);
  EXPECT_EQ(tokens, (std::vector<std::string>{"mis\xc3\xa9rables", "les", "1995", "drama", "musical"}));

  // Mapping file: item 1 -> movie 3, item 2 -> movie 1, item 3 -> movie 99 (absent).
  const std::string map = dir.write("map.txt", "2 1\n1 3\n3 99\n");
  std::vector<std::string> mapped = load_movielens_item_texts_mapped(movies, map, 0, {}, &report);
  ASSERT_EQ(mapped.size(), 4u);
  EXPECT_EQ(mapped[1], id[3]);
  EXPECT_EQ(mapped[2], id[1]);
  EXPECT_EQ(mapped[3], "");
  EXPECT_EQ(report.missing, 1);
  EXPECT_EQ(report.unused_records, 1);  // movie 4
  // `muonrec prepare`'s items map, header and all, maps the same way; another first line is an error.
  const std::string prepared = dir.write("prepared_items.tsv", "item\tsource\n2\t1\n1\t3\n3\t99\n");
  EXPECT_EQ(load_movielens_item_texts_mapped(movies, prepared, 0, {}, &report), mapped);
  expect_error([&] { read_item_id_map(dir.write("named.tsv", "item\tmovie\n2\t1\n")); },
               {"named.tsv:1", "item id"});
  // With a movie column (a file prepared from a dense one numbered through a map), the MovieIDs are read,
  // not the source's ids; 0 is an item without one.
  const std::string with_movies =
      dir.write("movies_items.tsv", "item\tsource\tmovie\n2\t7\t1\n1\t8\t3\n3\t9\t99\n4\t10\t0\n");
  EXPECT_EQ(read_item_id_map(with_movies), (std::vector<int64_t>{0, 3, 1, 99, 0}));
  std::vector<std::string> through_movies = load_movielens_item_texts_mapped(movies, with_movies, 0, {}, &report);
  EXPECT_EQ(through_movies, (std::vector<std::string>{"", mapped[1], mapped[2], mapped[3], ""}));
  EXPECT_FALSE(item_id_map_holds_source_ids(with_movies));
  EXPECT_TRUE(item_id_map_holds_source_ids(prepared));
  EXPECT_FALSE(item_id_map_holds_source_ids(map));
  expect_error([&] { read_item_id_map(dir.write("short.tsv", "item\tsource\tmovie\n2\t7\n")); },
               {"short.tsv:2", "expected 'item_id source_id movie_id', got 2 fields"});
  expect_error([&] { read_item_id_map(dir.write("again.tsv", "item\tsource\tmovie\n2\t7\t0\n2\t8\t0\n")); },
               {"again.tsv:3", "item id 2 already mapped on line 2"});
  // The maps are TSV: a source's names may hold spaces (a CSV file's 'red lipstick').
  const std::string spaced = dir.write("spaced_items.tsv", "item\tsource\tmovie\n1\tred lipstick\t101\n2\tpen\t0\n");
  EXPECT_EQ(read_item_id_map(spaced), (std::vector<int64_t>{0, 101, 0}));
  EXPECT_EQ(read_prepared_item_sources(spaced), (std::vector<std::string>{"", "red lipstick", "pen"}));
  expect_error([&] { read_prepared_item_sources(dir.write("cut.tsv", "item\tsource\n1\n")); },
               {"cut.tsv:2", "expected 2 tab-separated fields, got 1"});
  expect_error([&] { read_prepared_item_sources(dir.write("long.tsv", "item\tsource\n1\ta\tb\n")); },
               {"long.tsv:2", "expected 2 tab-separated fields, got 3"});
  expect_error([&] { read_prepared_item_sources(map); }, {"map.txt:1", "expected the header 'item<TAB>source'"});
}

TEST(SemanticIdText, RealBeautyTitles) {
  const std::string dir = testkit::shared_dir() + "/data/beauty";
  SKIP_WITHOUT_SHARED(fs::exists(dir + "/beauty_item_asin.txt") && fs::exists(dir + "/beauty_item_titles.txt"),
                      "data/beauty/beauty_item_asin.txt or beauty_item_titles.txt");
  ItemTextReport report;
  std::vector<std::string> texts =
      load_asin_item_texts(dir + "/beauty_item_asin.txt", dir + "/beauty_item_titles.txt", 12101, &report);
  std::printf("[ beauty   ] %s\n", report.summary().c_str());
  ASSERT_EQ(texts.size(), 12102u);
  EXPECT_EQ(report.with_text + report.missing, 12101);
  EXPECT_GE(report.with_text, 12000);
  EXPECT_FALSE(texts[1].empty());
}

TEST(SemanticIdText, RealMovieLensMapped) {
  const std::string dir = testkit::shared_dir() + "/data/ml-1m";
  SKIP_WITHOUT_SHARED(fs::exists(dir + "/movies.dat") && fs::exists(dir + "/sas_to_original_items.txt"),
                      "data/ml-1m/movies.dat or sas_to_original_items.txt");
  ItemTextReport report;
  std::vector<std::string> texts =
      load_movielens_item_texts_mapped(dir + "/movies.dat", dir + "/sas_to_original_items.txt", 0, {}, &report);
  std::printf("[ ml-1m    ] %s\n", report.summary().c_str());
  ASSERT_EQ(texts.size(), 3417u);
  EXPECT_EQ(report.missing, 0);
  EXPECT_NE(texts[3].find("Forrest Gump"), std::string::npos) << texts[3];  // item 3 -> MovieID 356
}

// ---------------------------------------------------------------------------------------------
// TF-IDF

TEST(Tfidf, Tokenizer) {
  EXPECT_EQ(tokenize("Hello, WORLD! a b2 x-ray 3D 42"),
            (std::vector<std::string>{"hello", "world", "b2", "ray", "3d", "42"}));
  EXPECT_TRUE(tokenize("a b c !!").empty());
  TokenizerOptions one;
  one.min_token_length = 1;
  EXPECT_EQ(tokenize("a b", one), (std::vector<std::string>{"a", "b"}));
}

TEST(Tfidf, HandComputedThreeDocuments) {
  // d0: apple x2, banana    d1: banana, cherry    d2: cherry x3, date ("x" is one character: dropped)
  // df: apple 1, banana 2, cherry 2, date 1; n = 3
  // idf(df=1) = ln(4/2) + 1 = 1.6931472,  idf(df=2) = ln(4/3) + 1 = 1.2876821
  // d0: apple (1 + ln 2) * 1.6931472 = 2.8667474, banana 1 * 1.2876821 = 1.2876821,
  //     norm 3.1426763 -> 0.9122016, 0.4097416
  // d1: banana = cherry = 1.2876821 -> 1/sqrt(2) each
  // d2: cherry (1 + ln 3) * 1.2876821 = 2.7023342, date 1.6931472, norm 3.1889524 -> 0.8474085, 0.5309415
  Tfidf t = fit_tfidf({"Apple banana apple!", "banana, Cherry", "cherry cherry CHERRY date x"});
  ASSERT_EQ(t.vocabulary, (std::vector<std::string>{"apple", "banana", "cherry", "date"}));
  EXPECT_EQ(t.document_frequency, (std::vector<int64_t>{1, 2, 2, 1}));
  EXPECT_NEAR(t.idf[0], 1.6931472f, 1e-6);
  EXPECT_NEAR(t.idf[1], 1.2876821f, 1e-6);
  const SparseMatrix& m = t.matrix;
  ASSERT_EQ(m.rows, 3);
  ASSERT_EQ(m.cols, 4);
  EXPECT_EQ(m.nnz(), 6);
  EXPECT_NEAR(m.at(0, 0), 0.9122016f, 1e-6);
  EXPECT_NEAR(m.at(0, 1), 0.4097416f, 1e-6);
  EXPECT_EQ(m.at(0, 2), 0.0f);
  EXPECT_NEAR(m.at(1, 1), 0.7071068f, 1e-6);
  EXPECT_NEAR(m.at(1, 2), 0.7071068f, 1e-6);
  EXPECT_NEAR(m.at(2, 2), 0.8474085f, 1e-6);
  EXPECT_NEAR(m.at(2, 3), 0.5309415f, 1e-6);
  EXPECT_EQ(t.empty_rows, 0);

  // Without sublinear tf and smoothing: apple tf 2, idf ln(3/1) + 1.
  TfidfOptions raw;
  raw.sublinear_tf = false;
  raw.smooth_idf = false;
  raw.l2_normalize = false;
  Tfidf r = fit_tfidf({"Apple banana apple!", "banana, Cherry", "cherry cherry CHERRY date x"}, raw);
  EXPECT_NEAR(r.matrix.at(0, 0), 2.0 * (std::log(3.0) + 1.0), 1e-5);
  EXPECT_NEAR(r.matrix.at(2, 2), 3.0 * (std::log(1.5) + 1.0), 1e-5);
}

TEST(Tfidf, MinDocumentFrequencyAndEmptyRows) {
  TfidfOptions o;
  o.min_df = 2;
  Tfidf t = fit_tfidf({"red shoe", "red hat", "blue", ""}, o);
  EXPECT_EQ(t.vocabulary, (std::vector<std::string>{"red"}));
  EXPECT_EQ(t.empty_rows, 2);  // "blue" (df 1) and ""
  EXPECT_NEAR(t.matrix.at(0, 0), 1.0f, 1e-6);
  EXPECT_EQ(t.matrix.at(2, 0), 0.0f);
  EXPECT_NEAR(t.idf[0], std::log(5.0 / 3.0) + 1.0, 1e-6);  // n counts every document, empty ones too
}

TEST(Tfidf, EmbeddingsShapeNormAndEmptyItems) {
  std::vector<std::string> texts = {"", "red leather shoe", "red leather hat", "blue denim hat", "", "zzz"};
  TextEmbeddingOptions o;
  o.width = 16;
  o.seed = 7;
  TextEmbeddings e = embed_item_texts(texts, o);
  ASSERT_EQ(e.values.size(), 6u * 16u);
  EXPECT_EQ(e.n_items, 5);
  EXPECT_EQ(e.vocabulary_size, 3);  // hat, leather, red (min_df 2)
  EXPECT_EQ(e.empty_items, 2);      // item 4 ("") and item 5 ("zzz", below min_df)
  for (int64_t j = 0; j < 16; ++j) EXPECT_EQ(e.row(0)[j], 0.0f);
  auto norm = [&](int64_t i) {
    double s = 0;
    for (int64_t j = 0; j < 16; ++j) s += double(e.row(i)[j]) * e.row(i)[j];
    return std::sqrt(s);
  };
  for (int64_t i = 1; i <= 3; ++i) EXPECT_NEAR(norm(i), 1.0, 1e-5);
  EXPECT_NEAR(norm(4), 1.0, 1e-5);  // empty items: random unit vectors by default
  EXPECT_NEAR(norm(5), 1.0, 1e-5);
  EXPECT_NE(e.row(4)[0], e.row(5)[0]);
  {
    // A tiny norm on request; each empty item's vector depends on (seed, item) only.
    TextEmbeddingOptions tiny = o;
    tiny.empty_norm = 1e-3f;
    TextEmbeddings t = embed_item_texts(texts, tiny);
    std::vector<std::string> more = texts;
    more.push_back("");
    TextEmbeddings t2 = embed_item_texts(more, tiny);
    double n4 = 0;
    for (int64_t j = 0; j < 16; ++j) {
      n4 += double(t.row(4)[j]) * t.row(4)[j];
      EXPECT_FLOAT_EQ(t.row(4)[j], 1e-3f * e.row(4)[j]);
      EXPECT_EQ(t2.row(4)[j], t.row(4)[j]);
    }
    EXPECT_NEAR(std::sqrt(n4), 1e-3, 1e-8);
  }
  auto cosine = [&](int64_t a, int64_t b) {
    double s = 0;
    for (int64_t j = 0; j < 16; ++j) s += double(e.row(a)[j]) * e.row(b)[j];
    return s / (norm(a) * norm(b));
  };
  // Items 1 and 2 share two of their tokens, 1 and 3 none: the projection keeps that apart.
  EXPECT_GT(cosine(1, 2), cosine(1, 3));
  // Same seed, same vectors; another seed, other vectors.
  EXPECT_EQ(embed_item_texts(texts, o).values, e.values);
  o.seed = 8;
  EXPECT_NE(embed_item_texts(texts, o).values, e.values);
}

// ---------------------------------------------------------------------------------------------
// RQ-KMeans

RqKMeansOptions small_options(uint64_t seed = 1) {
  RqKMeansOptions o;
  o.levels = 3;
  o.codebook_size = 8;
  o.iterations = 30;
  o.seed = seed;
  return o;
}

TEST(RqKMeans, DeterministicBySeed) {
  const int64_t n = 600, dim = 12;
  std::vector<float> x = clustered_data(n, dim, 11);
  RqKMeans a(small_options(5)), b(small_options(5)), c(small_options(6));
  a.fit(x, dim);
  b.fit(x, dim);
  c.fit(x, dim);
  EXPECT_EQ(a.item_codes(), b.item_codes());
  for (int64_t l = 0; l < 3; ++l) EXPECT_EQ(a.codebook(l), b.codebook(l));
  EXPECT_NE(a.codebook(0), c.codebook(0));
  EXPECT_EQ(a.item_codes().size(), static_cast<size_t>((n + 1) * 4));
  for (int64_t l = 0; l < 4; ++l) EXPECT_EQ(a.item_codes()[l], -1);  // padding row
}

TEST(RqKMeans, CodesUniqueAfterDisambiguation) {
  const int64_t n = 800, dim = 8;
  std::vector<float> x = clustered_data(n, dim, 12);
  // Duplicate some items exactly so that full-prefix collisions are certain.
  for (int64_t i = 1; i <= 20; ++i) std::copy(x.begin() + i * dim, x.begin() + (i + 1) * dim, x.begin() + (i + 20) * dim);
  RqKMeans rq(small_options());
  rq.fit(x, dim);
  expect_unique_codes(rq);
  EXPECT_GE(rq.disambiguation_size(), 2);
  EXPECT_GT(rq.report().colliding_items, 0);
  std::vector<int64_t> vocab = rq.vocab_sizes();
  EXPECT_EQ(vocab, (std::vector<int64_t>{8, 8, 8, rq.disambiguation_size()}));
  // Colliding items are numbered in item-id order: item i (i <= 20) and its copy i + 20 share the
  // prefix, and the lower id has the lower disambiguation token.
  for (int64_t i = 1; i <= 20; ++i) {
    std::vector<int64_t> a = rq.item_code(i), b = rq.item_code(i + 20);
    ASSERT_TRUE(std::equal(a.begin(), a.end() - 1, b.begin()));
    EXPECT_LT(a.back(), b.back());
  }
  std::printf("[ rq-kmeans] %s\n", rq.report().summary().c_str());

  // The helper on its own.
  int64_t largest = 0, unique = 0;
  std::vector<int64_t> d = append_disambiguation({-1, -1, 3, 1, 3, 1, 0, 2, 3, 1}, 2, &largest, &unique);
  EXPECT_EQ(d, (std::vector<int64_t>{-1, -1, -1, 3, 1, 0, 3, 1, 1, 0, 2, 0, 3, 1, 2}));
  EXPECT_EQ(largest, 3);
  EXPECT_EQ(unique, 2);
}

TEST(RqKMeans, ReconstructionErrorDecreasesWithLevels) {
  const int64_t n = 1000, dim = 16;
  std::vector<float> x = clustered_data(n, dim, 13);
  RqKMeans rq(small_options());
  rq.fit(x, dim);
  const RqKMeansReport& r = rq.report();
  ASSERT_EQ(r.levels.size(), 3u);
  double prev = r.initial_mse;
  for (const RqKMeansLevelStats& s : r.levels) {
    EXPECT_LT(s.mse, prev);
    prev = s.mse;
  }
  // The hierarchy is recovered: the final error is near the noise floor (0.05^2 * 16 = 0.04).
  EXPECT_LT(r.levels.back().mse, 0.2 * r.initial_mse);
  // decode() agrees with the report, level by level.
  prev = INFINITY;
  for (int64_t used = 0; used <= 3; ++used) {
    std::vector<float> rec = rq.decode(rq.item_codes().data() + rq.code_length(), n, rq.code_length(), used);
    double err = 0;
    for (int64_t i = 0; i < n * dim; ++i) err += double(x[dim + i] - rec[i]) * (x[dim + i] - rec[i]);
    err /= n;
    const double expected = used == 0 ? r.initial_mse : r.levels[used - 1].mse;
    EXPECT_NEAR(err, expected, 1e-3 * expected + 1e-6) << used << " levels";
    EXPECT_LT(err, prev);
    prev = err;
  }
  // Unbalanced codes are nearest-centroid codes: encode() of the items gives them back.
  std::vector<int64_t> enc = rq.encode(x.data() + dim, n);
  for (int64_t i = 1; i <= n; ++i)
    for (int64_t l = 0; l < 3; ++l) ASSERT_EQ(enc[(i - 1) * 3 + l], rq.item_codes()[i * 4 + l]) << i << " " << l;
}

TEST(RqKMeans, BalancedRespectsCapacity) {
  // n a multiple of k, so that ceil(n / k) is n / k exactly (a capacity of n / k + 1 would pass otherwise).
  const int64_t n = 704, dim = 8, k = 8;
  std::vector<float> x = clustered_data(n, dim, 14, /*skewed=*/true);
  const int64_t capacity = n / k;
  auto largest_per_level = [&](const RqKMeans& rq) {
    std::vector<int64_t> out;
    for (int64_t l = 0; l < rq.levels(); ++l) {
      std::vector<int64_t> count(k, 0);
      for (int64_t i = 1; i <= n; ++i) ++count[rq.item_codes()[i * rq.code_length() + l]];
      out.push_back(*std::max_element(count.begin(), count.end()));
    }
    return out;
  };
  RqKMeans plain(small_options());
  plain.fit(x, dim);
  EXPECT_GT(largest_per_level(plain)[0], capacity) << "the skewed data should overfill a plain cluster";

  RqKMeansOptions o = small_options();
  o.balanced = true;
  RqKMeans rq(o);
  rq.fit(x, dim);
  for (int64_t m : largest_per_level(rq)) EXPECT_LE(m, capacity);
  EXPECT_EQ(largest_per_level(rq)[0], capacity) << "the overfull cluster is filled to its capacity";
  expect_unique_codes(rq);
  double prev = rq.report().initial_mse;
  for (const RqKMeansLevelStats& s : rq.report().levels) {
    EXPECT_LT(s.mse, prev);
    prev = s.mse;
  }
  // Balanced with few candidates per point exercises the fallback pass.
  o.balanced_candidates = 1;
  RqKMeans one(o);
  one.fit(x, dim);
  for (int64_t m : largest_per_level(one)) EXPECT_LE(m, capacity);
  expect_unique_codes(one);
  std::printf("[ balanced ] %s\n", rq.report().summary().c_str());
}

TEST(RqKMeans, RandomInitAndTinyInputs) {
  const int64_t dim = 4;
  std::vector<float> x = clustered_data(50, dim, 15);
  RqKMeansOptions o = small_options();
  o.kmeans_plus_plus = false;
  RqKMeans rq(o);
  rq.fit(x, dim);
  expect_unique_codes(rq);
  // Fewer items than centroids still works (duplicate centroids, every code unique).
  std::vector<float> three(x.begin(), x.begin() + 4 * dim);
  RqKMeans tiny(small_options());
  tiny.fit(three, dim);
  expect_unique_codes(tiny);
  EXPECT_EQ(tiny.n_items(), 3);
}

// Rows of `points` (each `dim` wide) as a multiset of vectors, for comparing centroid tables.
std::multiset<std::vector<float>> rows_of(const std::vector<float>& points, int64_t dim) {
  std::multiset<std::vector<float>> out;
  for (size_t i = 0; i < points.size(); i += static_cast<size_t>(dim))
    out.emplace(points.begin() + static_cast<std::ptrdiff_t>(i), points.begin() + static_cast<std::ptrdiff_t>(i + dim));
  return out;
}

// Item vectors [n + 1, dim] (row 0 padding) holding each of `locations` `copies` times, in turn.
std::vector<float> repeated_points(const std::vector<std::vector<float>>& locations, int64_t copies) {
  std::vector<float> x(locations[0].size(), 0.0f);
  for (int64_t c = 0; c < copies; ++c)
    for (const std::vector<float>& p : locations) x.insert(x.end(), p.begin(), p.end());
  return x;
}

// One level, no Lloyd iteration: the codebook is the initialisation itself.
RqKMeansOptions initialisation_only(int64_t k, uint64_t seed, bool plus_plus) {
  RqKMeansOptions o;
  o.levels = 1;
  o.codebook_size = k;
  o.iterations = 0;
  o.seed = seed;
  o.kmeans_plus_plus = plus_plus;
  return o;
}

// k-means++ draws each next centroid in proportion to the squared distance to the NEAREST centroid so
// far: with three locations (ten copies each) and k = 3, every seed picks each location once, since
// the points on a centroid have distance 0. (Weighting by the distance to the last centroid alone
// draws a location twice about half the time: A is 10 from B and C is 1 from A.)
TEST(RqKMeans, KMeansPlusPlusDrawsByTheDistanceToTheNearestCentroid) {
  const std::vector<std::vector<float>> locations = {{0, 0}, {10, 0}, {0, 1}};
  const std::vector<float> x = repeated_points(locations, 10);
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    RqKMeans rq(initialisation_only(3, seed, /*plus_plus=*/true));
    rq.fit(x, 2);
    EXPECT_EQ(rows_of(rq.codebook(0), 2), std::multiset<std::vector<float>>(locations.begin(), locations.end())) << "seed " << seed;
  }
}

// Without k-means++ the centroids are distinct points drawn uniformly: with as many centroids as
// points, a permutation of the points, and not always the same one.
TEST(RqKMeans, RandomInitialisationTakesDistinctPoints) {
  std::vector<std::vector<float>> locations;
  for (float i = 1; i <= 8; ++i) locations.push_back({i, i * i});
  const std::vector<float> x = repeated_points(locations, 1);
  std::set<std::vector<float>> tables;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    RqKMeans rq(initialisation_only(8, seed, /*plus_plus=*/false));
    rq.fit(x, 2);
    EXPECT_EQ(rows_of(rq.codebook(0), 2), std::multiset<std::vector<float>>(locations.begin(), locations.end())) << "seed " << seed;
    tables.insert(rq.codebook(0));
  }
  EXPECT_GT(tables.size(), 5u);
}

// Nearest-centroid assignment breaks ties towards the lower index, in training and in encode().
TEST(RqKMeans, NearestCentroidTiesGoToTheLowerIndex) {
  const std::vector<std::vector<float>> codebooks = {{1, 0, -1, 0, 1, 0}, {0, 0, 0, 0, 0, 0}};
  const std::vector<float> x = {0, 0, 2, 0, -2, 0};  // equidistant from all three; from 0 and 2; nearest 1
  EXPECT_EQ(residual_quantize(x.data(), 3, 2, codebooks, 3), (std::vector<int64_t>{0, 0, 0, 0, 1, 0}));
}

// An empty cluster takes the point farthest from its centroid. Four points, two of them equal, and
// k = 3: whichever three the random initialisation draws, the level ends with one centroid per
// location and no error (when it draws both equal points, one cluster is empty and must take the
// point farthest from its centroid, by the true distance |x - c|^2).
TEST(RqKMeans, AnEmptyClusterTakesThePointFarthestFromItsCentroid) {
  const std::vector<float> x = repeated_points({{0, 0}, {0, 0}, {1, 0}, {3, 0}}, 1);
  int64_t reseeded = 0;
  for (uint64_t seed = 1; seed <= 16; ++seed) {
    RqKMeansOptions o = initialisation_only(3, seed, /*plus_plus=*/false);
    o.iterations = 5;
    RqKMeans rq(o);
    rq.fit(x, 2);
    EXPECT_EQ(rq.report().levels[0].mse, 0.0) << "seed " << seed;
    reseeded += rq.report().levels[0].reseeded;
  }
  EXPECT_GT(reseeded, 0) << "no seed drew both equal points";
}

// A point that sits on its centroid never reseeds an empty cluster (it would only duplicate that
// centroid): three locations and k = 5 leave two clusters empty for good, with nothing reseeded.
TEST(RqKMeans, PointsOnTheirCentroidDoNotReseedEmptyClusters) {
  const std::vector<float> x = repeated_points({{0, 0}, {4, 0}, {0, 3}}, 4);
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    RqKMeansOptions o = initialisation_only(5, seed, /*plus_plus=*/true);
    o.iterations = 10;
    RqKMeans rq(o);
    rq.fit(x, 2);
    const RqKMeansLevelStats& level = rq.report().levels[0];
    EXPECT_EQ(level.reseeded, 0) << "seed " << seed;
    EXPECT_EQ(level.used_clusters, 3) << "seed " << seed;
    EXPECT_EQ(level.mse, 0.0) << "seed " << seed;
  }
}

// Balanced codes are not nearest-centroid codes, so after the last assignment each centroid becomes
// the mean of the members it has: at level 0 of the items, at level 1 of their residuals. One Lloyd
// iteration, so that the last assignment differs from the one the centroids were last fitted to.
TEST(RqKMeans, BalancedCentroidsAreTheMeansOfTheirMembers) {
  const int64_t n = 300, dim = 6, k = 8;
  const std::vector<float> x = clustered_data(n, dim, 21, /*skewed=*/true);
  RqKMeansOptions o = small_options(3);
  o.levels = 2;
  o.iterations = 1;
  o.balanced = true;
  RqKMeans rq(o);
  rq.fit(x, dim);
  ASSERT_FALSE(rq.report().levels[0].converged) << "the test needs a level that stopped at its iteration limit";
  std::vector<double> residual(x.begin() + dim, x.end());
  for (int64_t l = 0; l < 2; ++l) {
    std::vector<double> sums(static_cast<size_t>(k * dim), 0.0);
    std::vector<int64_t> count(static_cast<size_t>(k), 0);
    for (int64_t i = 1; i <= n; ++i) {
      const int64_t c = rq.item_codes()[i * rq.code_length() + l];
      ++count[c];
      for (int64_t j = 0; j < dim; ++j) sums[c * dim + j] += residual[(i - 1) * dim + j];
    }
    for (int64_t c = 0; c < k; ++c)
      for (int64_t j = 0; j < dim && count[c] > 0; ++j)
        EXPECT_NEAR(rq.codebook(l)[c * dim + j], sums[c * dim + j] / count[c], 1e-4)
            << "level " << l << " centroid " << c << " feature " << j;
    for (int64_t i = 1; i <= n; ++i) {
      const int64_t c = rq.item_codes()[i * rq.code_length() + l];
      for (int64_t j = 0; j < dim; ++j) residual[(i - 1) * dim + j] -= rq.codebook(l)[c * dim + j];
    }
  }
}

TEST(RqKMeans, BadInput) {
  expect_error([] { RqKMeans(RqKMeansOptions{0}); }, {"levels"});
  RqKMeansOptions o;
  o.codebook_size = 0;
  expect_error([&] { RqKMeans{o}; }, {"codebook_size"});
  RqKMeans rq(small_options());
  std::vector<float> x = clustered_data(10, 4, 1);
  x[4 * 3 + 2] = NAN;
  expect_error([&] { rq.fit(x, 4); }, {"item 3 feature 2", "not finite"});
  // Finite but so long that float distances overflow (they would put every item in one cluster).
  x = clustered_data(10, 4, 1);
  x[4 * 5] = 1e20f;
  expect_error([&] { rq.fit(x, 4); }, {"item 5's vector is too long for float distances", "scale the vectors down"});
  expect_error([&] { rq.fit(std::vector<float>(4, 0.0f), 4); }, {"n_items >= 1"});
  expect_error([&] { rq.fit(std::vector<float>(10, 0.0f), 4); }, {"rows of width 4"});
  expect_error([&] { rq.item_code(1); }, {"not fitted"});
}

TEST(RqKMeans, SaveLoadRoundTrip) {
  const int64_t n = 500, dim = 8;
  std::vector<float> x = clustered_data(n, dim, 16);
  RqKMeansOptions o = small_options(99);
  o.balanced = true;
  RqKMeans rq(o);
  rq.fit(x, dim);

  std::map<std::string, Tensor> state = rq.state_dict("sid.");
  ASSERT_TRUE(state.count("sid.codebook.0") && state.count("sid.codebook.2") && state.count("sid.codes"));
  EXPECT_EQ(state.at("sid.codes").dtype(), DType::I64);
  EXPECT_EQ(state.at("sid.codes").shape(), (Shape{n + 1, 4}));
  EXPECT_EQ(state.at("sid.codebook.1").dtype(), DType::F32);
  EXPECT_EQ(state.at("sid.codebook.1").shape(), (Shape{8, dim}));

  auto expect_same = [&](const RqKMeans& b) {
    EXPECT_EQ(b.item_codes(), rq.item_codes());
    for (int64_t l = 0; l < 3; ++l) EXPECT_EQ(b.codebook(l), rq.codebook(l));
    EXPECT_EQ(b.vocab_sizes(), rq.vocab_sizes());
    EXPECT_EQ(b.options().seed, 99u);
    EXPECT_TRUE(b.options().balanced);
    EXPECT_EQ(b.dim(), dim);
    EXPECT_EQ(b.n_items(), n);
    EXPECT_EQ(b.encode(x.data() + dim, n), rq.encode(x.data() + dim, n));
  };
  expect_same(RqKMeans::from_state_dict(state, "sid."));

  // Through a safetensors checkpoint beside other (model) tensors.
  TempDir dir;
  const std::string path = dir.path("model.safetensors");
  std::map<std::string, Tensor> checkpoint = state;
  checkpoint["item.weight"] = testkit::random_tensor({4, 3}, 1);
  save_safetensors(path, checkpoint, rq.metadata("sid."));
  SafetensorsFile file = load_safetensors(path);
  EXPECT_EQ(file.metadata.at("sid.tokenizer"), "rq-kmeans");
  EXPECT_EQ(file.metadata.at("sid.disambiguation_size"), std::to_string(rq.disambiguation_size()));
  expect_same(RqKMeans::from_state_dict(file.tensors, "sid."));

  rq.save(dir.path("sid.safetensors"));
  expect_same(RqKMeans::load(dir.path("sid.safetensors")));

  // A corrupt state names the tensor.
  std::map<std::string, Tensor> broken = state;
  broken.erase("sid.codebook.1");
  expect_error([&] { RqKMeans::from_state_dict(broken, "sid."); }, {"sid.codebook.1", "missing"});
  broken = state;
  std::vector<int64_t> codes = state.at("sid.codes").to_i64_vector();
  codes[4 * 5 + 1] = 8;
  broken["sid.codes"] = Tensor::from_i64(codes, {n + 1, 4});
  expect_error([&] { RqKMeans::from_state_dict(broken, "sid."); }, {"item 5 position 1", "outside [0, 8)"});
  // A levels count near 2^63 (levels + 1 would overflow) is compared without overflowing.
  broken = state;
  std::vector<int64_t> options = state.at("sid.options").to_i64_vector();
  options[0] = std::numeric_limits<int64_t>::max();
  broken["sid.options"] = Tensor::from_i64(options, {7});
  expect_error([&] { RqKMeans::from_state_dict(broken, "sid."); },
               {"'sid.codes' has shape [" + std::to_string(n + 1) + ", 4], expected [n_items + 1, levels " +
                std::to_string(std::numeric_limits<int64_t>::max()) + " + 1]"});
  // A vocabulary wider than the codebook, and two items with one code.
  broken = state;
  std::vector<int64_t> vocab = state.at("sid.vocab_sizes").to_i64_vector();
  vocab[0] = 300;
  broken["sid.vocab_sizes"] = Tensor::from_i64(vocab, {4});
  expect_error([&] { RqKMeans::from_state_dict(broken, "sid."); }, {"level 0 has a vocabulary of 300, the codebook 8"});
  broken = state;
  codes = state.at("sid.codes").to_i64_vector();
  std::copy(codes.begin() + 4 * 2, codes.begin() + 4 * 3, codes.begin() + 4 * 7);  // item 7 takes item 2's code
  broken["sid.codes"] = Tensor::from_i64(codes, {n + 1, 4});
  expect_error([&] { RqKMeans::from_state_dict(broken, "sid."); }, {"items 2 and 7 share a code"});
}

TEST(RqKMeans, BeautyEndToEnd) {
  const std::string dir = testkit::shared_dir() + "/data/beauty";
  SKIP_WITHOUT_SHARED(fs::exists(dir + "/beauty_item_asin.txt") && fs::exists(dir + "/beauty_item_titles.txt"),
                      "data/beauty/beauty_item_asin.txt or beauty_item_titles.txt");
  auto t0 = std::chrono::steady_clock::now();
  ItemTextReport text_report;
  std::vector<std::string> texts =
      load_asin_item_texts(dir + "/beauty_item_asin.txt", dir + "/beauty_item_titles.txt", 0, &text_report);
  const double t_load = seconds_since(t0);
  ASSERT_EQ(texts.size(), 12102u);

  t0 = std::chrono::steady_clock::now();
  TextEmbeddingOptions eo;
  eo.width = 64;
  TextEmbeddings emb = embed_item_texts(texts, eo);
  const double t_embed = seconds_since(t0);

  RqKMeansOptions o;  // 3 levels x 256 codes
  RqKMeans rq(o);
  rq.fit(emb.values, emb.width);
  const RqKMeansReport& r = rq.report();
  expect_unique_codes(rq);
  ASSERT_EQ(rq.n_items(), 12101);

  std::printf("[ beauty   ] %s\n", text_report.summary().c_str());
  std::printf("[ beauty   ] tf-idf: vocabulary %lld, %lld items with an empty row; load %.3f s, embed %.3f s\n",
              static_cast<long long>(emb.vocabulary_size), static_cast<long long>(emb.empty_items), t_load, t_embed);
  std::printf("[ beauty   ] %s\n", r.summary().c_str());
  std::printf("[ beauty   ] 12101 items x 64 dims x 3 levels x 256 codes: fit %.3f s, disambiguation vocab %lld\n",
              r.seconds, static_cast<long long>(rq.disambiguation_size()));

  RqKMeansOptions bo;
  bo.balanced = true;
  RqKMeans balanced(bo);
  balanced.fit(emb.values, emb.width);
  expect_unique_codes(balanced);
  std::printf("[ beauty   ] balanced: %s\n", balanced.report().summary().c_str());
  double prev = r.initial_mse;
  for (const RqKMeansLevelStats& s : r.levels) {
    EXPECT_LT(s.mse, prev);
    prev = s.mse;
  }
}

// ---------------------------------------------------------------------------------------------
// Prefix trie

// Codes [n_items + 1, 3] for 6 items; row 0 is padding.
std::vector<int64_t> small_codes() {
  return {-1, -1, -1,  //
          0,  1,  0,   // item 1
          0,  1,  1,   // item 2
          0,  2,  0,   // item 3
          2,  0,  0,   // item 4
          2,  5,  0,   // item 5
          1,  1,  0};  // item 6
}

TEST(PrefixTrie, ChildrenAndItems) {
  PrefixTrie trie(small_codes(), 3);
  EXPECT_EQ(trie.depth(), 3);
  EXPECT_EQ(trie.n_items(), 6);
  EXPECT_EQ(trie.allowed_next({}), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(trie.allowed_next({0}), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(trie.allowed_next({0, 1}), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(trie.allowed_next({2}), (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(trie.allowed_next({1, 1}), (std::vector<int64_t>{0}));
  EXPECT_TRUE(trie.allowed_next({3}).empty());
  EXPECT_TRUE(trie.allowed_next({0, 3}).empty());
  EXPECT_TRUE(trie.allowed_next({0, 1, 1}).empty());  // full depth
  EXPECT_EQ(trie.item({0, 1, 1}), 2);
  EXPECT_EQ(trie.item({2, 5, 0}), 5);
  EXPECT_EQ(trie.item({1, 1, 0}), 6);
  EXPECT_EQ(trie.item({2, 5, 1}), 0);
  EXPECT_EQ(trie.item({2, 5}), 0);
  EXPECT_EQ(trie.count({}), 6);
  EXPECT_EQ(trie.count({0}), 3);
  EXPECT_EQ(trie.count({0, 1}), 2);
  EXPECT_EQ(trie.count({4}), 0);
  EXPECT_EQ(trie.num_nodes(), 1 + 3 + 5 + 6);
  expect_error([&] { trie.allowed_next({0, 1, 1, 0}); }, {"exceeds depth 3"});
  // Node-level walk.
  int32_t node = trie.child(PrefixTrie::kRoot, 2);
  ASSERT_GE(node, 0);
  EXPECT_EQ(trie.tokens(node), (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(trie.child(node, 1), -1);
  EXPECT_EQ(trie.leaf_item(trie.find({2, 0, 0})), 4);
  // Upward: an item's leaf, then its parents up to the root.
  EXPECT_EQ(trie.leaf(5), trie.find({2, 5, 0}));
  EXPECT_EQ(trie.parent(trie.leaf(5)), trie.find({2, 5}));
  EXPECT_EQ(trie.parent(trie.find({2, 5})), node);
  EXPECT_EQ(trie.parent(node), PrefixTrie::kRoot);
  EXPECT_EQ(trie.parent(PrefixTrie::kRoot), -1);
  EXPECT_EQ(trie.leaf(0), -1);
  EXPECT_EQ(trie.leaf(7), -1);
}

TEST(PrefixTrie, FromRqKMeansAndBadCodes) {
  const int64_t dim = 8;
  std::vector<float> x = clustered_data(300, dim, 17);
  RqKMeans rq(small_options());
  rq.fit(x, dim);
  PrefixTrie trie(rq.item_codes(), rq.code_length());
  for (int64_t i = 1; i <= 300; ++i) EXPECT_EQ(trie.item(rq.item_code(i)), i);

  std::vector<int64_t> dup = small_codes();
  dup[5 * 3 + 1] = 0;  // item 5 becomes 2 0 0, like item 4
  expect_error([&] { PrefixTrie(dup, 3); }, {"items 4 and 5 have the same code"});
  std::vector<int64_t> neg = small_codes();
  neg[2 * 3 + 2] = -3;
  expect_error([&] { PrefixTrie(neg, 3); }, {"item 2 position 2", "negative"});
  expect_error([&] { PrefixTrie(std::vector<int64_t>(7, 0), 3); }, {"rows"});
}

// ---------------------------------------------------------------------------------------------
// Beam search

uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A made-up model: the log-probability of `token` after `prefix` for `user`, a fixed function of
// all three with values in (-8, 0], plus optional position weights.
float fake_log_prob(int64_t user, const std::vector<int64_t>& prefix, int64_t token,
                    const std::vector<float>& position_scale = {}) {
  uint64_t h = mix(static_cast<uint64_t>(user) + 12345);
  for (int64_t t : prefix) h = mix(h ^ static_cast<uint64_t>(t + 1));
  h = mix(h ^ static_cast<uint64_t>(token + 1000));
  float v = -static_cast<float>(h % 8000) / 1000.0f;
  if (!position_scale.empty()) v *= position_scale[prefix.size()];
  return v;
}

StepScorer fake_scorer(const std::vector<int64_t>& vocab, int64_t user = 0, const std::vector<float>& scale = {},
                       int* calls = nullptr) {
  return [=](const std::vector<std::vector<int64_t>>& prefixes, std::vector<std::vector<float>>& log_probs) {
    if (calls) ++*calls;
    for (size_t b = 0; b < prefixes.size(); ++b) {
      const int64_t v = vocab[prefixes[b].size()];
      log_probs[b].resize(v);
      for (int64_t t = 0; t < v; ++t) log_probs[b][t] = fake_log_prob(user, prefixes[b], t, scale);
    }
  };
}

// Every item's score, summed in position order as the beam search does, sorted like its output.
std::vector<BeamHit> brute_force(const std::vector<int64_t>& codes, int64_t depth, int64_t user,
                                 const std::vector<float>& scale = {}) {
  std::vector<BeamHit> all;
  const int64_t n = static_cast<int64_t>(codes.size()) / depth - 1;
  for (int64_t i = 1; i <= n; ++i) {
    BeamHit h;
    h.item = i;
    float s = 0.0f;
    for (int64_t l = 0; l < depth; ++l) {
      s = s + fake_log_prob(user, h.code, codes[i * depth + l], scale);
      h.code.push_back(codes[i * depth + l]);
    }
    h.score = s;
    all.push_back(h);
  }
  std::sort(all.begin(), all.end(), [](const BeamHit& a, const BeamHit& b) {
    return a.score != b.score ? a.score > b.score : a.item < b.item;
  });
  return all;
}

// n items with unique random codes over vocabularies {6, 5, 4}: a small TIGER-like table.
std::vector<int64_t> random_codes(int64_t n, uint64_t seed) {
  std::set<std::vector<int64_t>> used;
  std::vector<int64_t> codes(3, -1);
  uint64_t h = seed;
  while (static_cast<int64_t>(used.size()) < n) {
    std::vector<int64_t> c;
    h = mix(h);
    c.push_back(static_cast<int64_t>(h % 6));
    h = mix(h);
    c.push_back(static_cast<int64_t>(h % 5));
    h = mix(h);
    c.push_back(static_cast<int64_t>(h % 4));
    if (used.insert(c).second) codes.insert(codes.end(), c.begin(), c.end());
  }
  return codes;
}

void expect_same_hits(const std::vector<BeamHit>& got, const std::vector<BeamHit>& want, size_t k) {
  ASSERT_EQ(got.size(), std::min(k, want.size()));
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].item, want[i].item) << "rank " << i;
    EXPECT_EQ(got[i].score, want[i].score) << "rank " << i;
    EXPECT_EQ(got[i].code, want[i].code) << "rank " << i;
  }
}

TEST(BeamSearch, EqualsBruteForceWhenBeamsCoverEveryPrefix) {
  const std::vector<int64_t> vocab = {6, 5, 4};
  const std::vector<int64_t> codes = random_codes(40, 3);
  PrefixTrie trie(codes, 3);
  BeamSearchOptions o;
  o.top_k = 7;
  o.beam_width = 40;  // >= the number of prefixes at any depth: the search is exhaustive
  int calls = 0;
  std::vector<BeamHit> got = constrained_beam_search(trie, fake_scorer(vocab, 0, {}, &calls), o);
  EXPECT_EQ(calls, 3);
  expect_same_hits(got, brute_force(codes, 3, 0), 7);
}

TEST(BeamSearch, WidthKReturnsValidDistinctItemsInScoreOrder) {
  const std::vector<int64_t> vocab = {6, 5, 4};
  const std::vector<int64_t> codes = random_codes(60, 4);
  PrefixTrie trie(codes, 3);
  BeamSearchOptions o;
  o.top_k = 5;
  std::vector<BeamHit> got = constrained_beam_search(trie, fake_scorer(vocab), o);
  ASSERT_EQ(got.size(), 5u);
  std::vector<BeamHit> all = brute_force(codes, 3, 0);
  std::map<int64_t, float> score_of;
  for (const BeamHit& h : all) score_of[h.item] = h.score;
  std::set<int64_t> items;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(trie.item(got[i].code), got[i].item);
    EXPECT_EQ(got[i].score, score_of.at(got[i].item));
    EXPECT_TRUE(items.insert(got[i].item).second);
    if (i > 0) EXPECT_GE(got[i - 1].score, got[i].score);
  }
  // Beam search is approximate: its best item can't beat the true best.
  EXPECT_LE(got[0].score, all[0].score);

  // When earlier positions dominate the score (weights 100, 10, 1), width K is exact.
  const std::vector<float> scale = {100.0f, 10.0f, 1.0f};
  expect_same_hits(constrained_beam_search(trie, fake_scorer(vocab, 0, scale), o), brute_force(codes, 3, 0, scale), 5);
}

TEST(BeamSearch, FewerItemsThanKAndTies) {
  PrefixTrie trie(small_codes(), 3);
  BeamSearchOptions o;
  o.top_k = 10;
  // Equal log-probabilities everywhere: every score ties, the order is by item id.
  StepScorer flat = [](const std::vector<std::vector<int64_t>>& prefixes, std::vector<std::vector<float>>& lp) {
    for (size_t b = 0; b < prefixes.size(); ++b) lp[b].assign(6, -1.0f);
  };
  std::vector<BeamHit> got = constrained_beam_search(trie, flat, o);
  ASSERT_EQ(got.size(), 6u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].item, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(got[i].score, -3.0f);
  }
  expect_same_hits(constrained_beam_search(trie, fake_scorer({6, 6, 6}), o), brute_force(small_codes(), 3, 0), 10);
  // -inf tokens survive only when nothing better exists.
  StepScorer forbid_two = [](const std::vector<std::vector<int64_t>>& prefixes, std::vector<std::vector<float>>& lp) {
    for (size_t b = 0; b < prefixes.size(); ++b) {
      lp[b].assign(6, -1.0f);
      if (prefixes[b].empty()) lp[b][2] = -INFINITY;
    }
  };
  o.top_k = 4;
  got = constrained_beam_search(trie, forbid_two, o);
  ASSERT_EQ(got.size(), 4u);
  for (const BeamHit& h : got) EXPECT_NE(h.code[0], 2);
  o.top_k = 6;
  got = constrained_beam_search(trie, forbid_two, o);
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[4].score, -INFINITY);
}

TEST(BeamSearch, BatchMatchesSingleUser) {
  const std::vector<int64_t> vocab = {6, 5, 4};
  const std::vector<int64_t> codes = random_codes(50, 5);
  PrefixTrie trie(codes, 3);
  BeamSearchOptions o;
  o.top_k = 4;
  o.beam_width = 8;
  int calls = 0;
  BatchStepScorer batch = [&](const std::vector<int64_t>& users, const std::vector<std::vector<int64_t>>& prefixes,
                              std::vector<std::vector<float>>& log_probs) {
    ++calls;
    for (size_t b = 0; b < prefixes.size(); ++b) {
      const int64_t v = vocab[prefixes[b].size()];
      log_probs[b].resize(v);
      for (int64_t t = 0; t < v; ++t) log_probs[b][t] = fake_log_prob(users[b], prefixes[b], t);
    }
  };
  std::vector<std::vector<BeamHit>> got = constrained_beam_search_batch(trie, 3, batch, o);
  EXPECT_EQ(calls, 3);  // one call per step for all users
  ASSERT_EQ(got.size(), 3u);
  for (int64_t u = 0; u < 3; ++u) expect_same_hits(got[u], constrained_beam_search(trie, fake_scorer(vocab, u), o), 4);
  EXPECT_TRUE(got[0][0].item != got[1][0].item || got[1][0].item != got[2][0].item) << "users should differ";
  EXPECT_TRUE(constrained_beam_search_batch(trie, 0, batch, o).empty());
}

// Excluded items (a user's history) are searched as if absent: the beams go to the other items, so
// even a beam as narrow as top_k returns top_k of them.
TEST(BeamSearch, ExcludedItemsAreSearchedAsIfAbsent) {
  const std::vector<int64_t> vocab = {6, 5, 4};
  const std::vector<int64_t> codes = random_codes(60, 6);
  PrefixTrie trie(codes, 3);
  const std::vector<float> scale = {100.0f, 10.0f, 1.0f};  // width top_k is exact (see above)
  const std::vector<BeamHit> ranked = brute_force(codes, 3, 0, scale);
  // The best first token's items, all of them (a whole branch closes), and the next two best items.
  std::set<int64_t> excluded;
  for (const BeamHit& h : ranked)
    if (h.code[0] == ranked[0].code[0]) excluded.insert(h.item);
  const size_t branch = excluded.size();
  for (const BeamHit& h : ranked)
    if (excluded.size() < branch + 2) excluded.insert(h.item);
  std::vector<BeamHit> want;
  for (const BeamHit& h : ranked)
    if (!excluded.count(h.item)) want.push_back(h);

  BatchStepScorer batch = [&](const std::vector<int64_t>& users, const std::vector<std::vector<int64_t>>& prefixes,
                              std::vector<std::vector<float>>& log_probs) {
    for (size_t b = 0; b < prefixes.size(); ++b) {
      log_probs[b].resize(vocab[prefixes[b].size()]);
      for (size_t t = 0; t < log_probs[b].size(); ++t)
        log_probs[b][t] = fake_log_prob(users[b], prefixes[b], static_cast<int64_t>(t), scale);
    }
  };
  BeamSearchOptions o;
  o.top_k = 5;
  const std::vector<int64_t> user0(excluded.begin(), excluded.end());
  std::vector<std::vector<BeamHit>> got = constrained_beam_search_batch(trie, 2, batch, o, {user0, {}});
  expect_same_hits(got[0], want, 5);
  // User 1 excludes nothing: the plain search.
  expect_same_hits(got[1], constrained_beam_search(trie, fake_scorer(vocab, 1, scale), o), 5);
  // Filtering the plain search's list afterwards would leave fewer than top_k.
  std::vector<BeamHit> plain = constrained_beam_search(trie, fake_scorer(vocab, 0, scale), o);
  EXPECT_TRUE(std::all_of(plain.begin(), plain.end(), [&](const BeamHit& h) { return excluded.count(h.item) > 0; }));

  expect_error([&] { constrained_beam_search_batch(trie, 2, batch, o, {user0}); }, {"1 excluded-item lists for 2 users"});
  expect_error([&] { constrained_beam_search_batch(trie, 1, batch, o, {{61}}); }, {"excluded item 61", "60 items"});
}

// Ties while decoding keep the beams in (parent beam, token) order: with every score equal and
// beams of width 2, the search keeps the two smallest prefixes at every step, so it returns the
// items of the two smallest codes, not the two smallest item ids (the final order's tie-break).
TEST(BeamSearch, TiesKeepTheSmallestPrefixes) {
  // Items 1..4 in reverse code order: item 4 has the smallest code.
  const std::vector<int64_t> codes = {-1, -1, -1, 1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0};
  PrefixTrie trie(codes, 3);
  StepScorer flat = [](const std::vector<std::vector<int64_t>>& prefixes, std::vector<std::vector<float>>& lp) {
    for (size_t b = 0; b < prefixes.size(); ++b) lp[b].assign(2, -1.0f);
  };
  BeamSearchOptions o;
  o.top_k = 2;
  std::vector<BeamHit> got = constrained_beam_search(trie, flat, o);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].item, 3);
  EXPECT_EQ(got[1].item, 4);
}

// An item excluded twice is excluded once: a branch with other items stays open.
TEST(BeamSearch, AnItemExcludedTwiceClosesNoBranch) {
  PrefixTrie trie(small_codes(), 3);
  BatchStepScorer flat = [](const std::vector<int64_t>&, const std::vector<std::vector<int64_t>>& prefixes,
                            std::vector<std::vector<float>>& lp) {
    for (size_t b = 0; b < prefixes.size(); ++b) lp[b].assign(6, -1.0f);
  };
  BeamSearchOptions o;
  o.top_k = 6;
  // Items 1 and 2 share the prefix {0, 1}: excluding item 2 twice must leave item 1 reachable.
  std::vector<std::vector<BeamHit>> once = constrained_beam_search_batch(trie, 1, flat, o, {{2}});
  std::vector<std::vector<BeamHit>> twice = constrained_beam_search_batch(trie, 1, flat, o, {{2, 2}});
  ASSERT_EQ(once[0].size(), 5u);
  EXPECT_EQ(once[0][0].item, 1);
  expect_same_hits(twice[0], once[0], 6);
}

TEST(BeamSearch, BadScorerOutput) {
  PrefixTrie trie(small_codes(), 3);
  StepScorer short_rows = [](const std::vector<std::vector<int64_t>>& prefixes, std::vector<std::vector<float>>& lp) {
    for (size_t b = 0; b < prefixes.size(); ++b) lp[b].assign(2, -1.0f);  // token 2 is allowed at step 0
  };
  expect_error([&] { constrained_beam_search(trie, short_rows); }, {"step 0", "token 2 is allowed"});
  StepScorer nan = [](const std::vector<std::vector<int64_t>>& prefixes, std::vector<std::vector<float>>& lp) {
    for (size_t b = 0; b < prefixes.size(); ++b) lp[b].assign(6, prefixes[b].size() == 1 ? NAN : -1.0f);
  };
  expect_error([&] { constrained_beam_search(trie, nan); }, {"step 1", "nan"});
  StepScorer few = [](const std::vector<std::vector<int64_t>>&, std::vector<std::vector<float>>& lp) { lp.clear(); };
  expect_error([&] { constrained_beam_search(trie, few); }, {"0 rows for 1 prefixes"});
  BeamSearchOptions o;
  o.top_k = 5;
  o.beam_width = 3;
  expect_error([&] { constrained_beam_search(trie, few, o); }, {"beam_width 3 is smaller than top_k 5"});
}

}  // namespace
}  // namespace muonrec::semantic_id
