// Files replaced whole or not at all, and outputs checked before any work.
#include <filesystem>

#include "muonrec/data/text_fields.h"
#include "muonrec/engine/file_replace.h"
#include "test_util.h"

using namespace muonrec;

namespace {

using data::read_whole_file;

TEST(FileReplace, ReplacesTheWholeFileAndLeavesNoTemporary) {
  testkit::TempDir dir;
  const std::string path = dir.write("out.txt", "an old and longer text\n");
  replace_file(path, {{"new ", 4}, {"text\n", 5}});
  EXPECT_EQ(read_whole_file(path), "new text\n");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  // A longer temporary left by a killed run: none of its bytes survive in the new file.
  dir.write("out.txt.tmp", std::string(100, 'x'));
  replace_file(path, "abc");
  EXPECT_EQ(read_whole_file(path), "abc");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

// Renaming onto a directory fails after the temporary is written: the temporary must go with it.
TEST(FileReplace, AFailedRenameRemovesTheTemporary) {
  testkit::TempDir dir;
  const std::string path = dir.path("taken");
  std::filesystem::create_directory(path);
  testkit::expect_error([&] { replace_file(path, "text"); }, {"cannot rename", "into place"});
  EXPECT_TRUE(std::filesystem::is_directory(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(FileReplace, AnOutputIsRefusedBeforeAnyWork) {
  testkit::TempDir dir;
  const std::string data = dir.write("data.txt", "1 2 3\n");
  check_output_file("--out", dir.path("new.txt"), {data});  // a new file in an existing directory
  check_output_file("--out", data + ".copy", {data, ""});    // an empty input is no input
  testkit::expect_error([&] { check_output_file("--out", dir.path("absent/x.txt"), {}); },
                        {"--out " + dir.path("absent/x.txt") + ": there is no directory " + dir.path("absent")});
  testkit::expect_error([&] { check_output_file("--out", dir.path(""), {}); }, {"it is a directory"});
  // The same file by another name ('..', a link) is still the input.
  std::filesystem::create_directory(dir.path("sub"));
  std::filesystem::create_symlink(data, dir.path("link.txt"));
  for (const std::string& alias : {dir.path("sub/../data.txt"), dir.path("link.txt")})
    testkit::expect_error([&] { check_output_file("eval: --ranks", alias, {dir.path("other.txt"), data}); },
                          {"eval: --ranks " + alias + " is the input file " + data, "would destroy it"});
  EXPECT_EQ(read_whole_file(data), "1 2 3\n");
}

}  // namespace
