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

// A link stays a link, its target replaced; a device or FIFO is written in place, not replaced by a
// plain file (--output /dev/stdout, --ranks /dev/null as root would swap the system's device node).
TEST(FileReplace, ALinksTargetIsReplacedAndADeviceWrittenInPlace) {
  testkit::TempDir dir;
  std::filesystem::create_directory(dir.path("runs"));
  const std::string target = dir.write("runs/target.tsv", "old\n");
  const std::string link = dir.path("link.tsv");
  std::filesystem::create_symlink(target, link);
  check_output_file("--output", link, {});
  replace_file(link, "new\n");
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_EQ(read_whole_file(target), "new\n");
  EXPECT_FALSE(std::filesystem::exists(dir.path("link.tsv.tmp")));
  EXPECT_FALSE(std::filesystem::exists(target + ".tmp"));
  // A link to a file not there yet: the file is made where the link points.
  const std::string dangling = dir.path("dangling.tsv");
  std::filesystem::create_symlink(dir.path("runs/later.tsv"), dangling);
  replace_file(dangling, "made\n");
  EXPECT_TRUE(std::filesystem::is_symlink(dangling));
  EXPECT_EQ(read_whole_file(dir.path("runs/later.tsv")), "made\n");

  check_output_file("--output", "/dev/null", {});  // /dev is not writable by everyone; /dev/null is
  replace_file("/dev/null", "discarded\n");
  EXPECT_TRUE(std::filesystem::is_character_file("/dev/null"));
  EXPECT_FALSE(std::filesystem::exists("/dev/null.tmp"));
  // Through a link too.
  std::filesystem::create_symlink("/dev/null", dir.path("null"));
  replace_file(dir.path("null"), "discarded\n");
  EXPECT_TRUE(std::filesystem::is_character_file("/dev/null"));
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
