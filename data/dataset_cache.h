// A binary cache of datasets as read_dataset returns them, so that a large file is parsed and
// preprocessed once: later reads of the same bytes with the same options load the result instead
// (about 20x faster than parsing a MovieLens ratings file).
//
// Entries are addressed by content, not by path or modification time: the key is a 64-bit hash of
// the file's bytes, its size, the reading options and the cache's format version, and the entry
// stores that key in full, so a changed file, other options or a newer engine never load a stale
// result (the hash guards against accidents, not against files crafted to collide). Writes go to a
// temporary file renamed into place (concurrent runs never see half an entry); an entry that cannot
// be read back (truncated, or failing its checksum) is parsed again and rewritten.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "muonrec/data/dataset.h"

namespace muonrec::data {

// The cache the command line uses: $MUONREC_DATA_CACHE (a directory, or "off" for none), else
// $XDG_CACHE_HOME/muonrec/data, else $HOME/.cache/muonrec/data; "" when off or no home is set.
std::string default_dataset_cache_dir();

// The entry format's version, in every key. Bump it whenever what the readers return for some file
// changes (an older engine's entries would otherwise load its results): a test pins the readers'
// output on a set of files to it.
int dataset_cache_version();

// 64-bit hash of a file's bytes (word at a time: several GB/s, far below parsing's cost).
uint64_t content_hash(std::string_view text);

// The entry's key: format version, file size and hash, every option that changes the result, and
// the format the file reads as (under Auto it depends on the file's name too).
std::string dataset_cache_key(std::string_view text, const ReadOptions& options, Format format_read);
// Where the entry of `key` lives in `dir`.
std::string dataset_cache_path(const std::string& dir, const std::string& key);

// The dataset stored at `file` under `key`; nullopt when there is no such file or it holds another
// key. Throws muonrec::Error naming the file when it is damaged or truncated.
std::optional<SequenceDataset> load_cached_dataset(const std::string& file, const std::string& key);
// Writes the entry (creating `file`'s directory), atomically. Throws muonrec::Error on failure.
void store_cached_dataset(const std::string& file, const std::string& key, const SequenceDataset& dataset);

}  // namespace muonrec::data
