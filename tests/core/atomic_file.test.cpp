#include "helpers.hpp"

using namespace bitgrad;

TEST_CASE("write_text_atomic replaces a file whole - a failed write leaves neither a partial file nor a .tmp") {
    testing::TempDir dir("atomic-file");
    write_text_atomic(dir / "a.txt", "first");
    write_text_atomic(dir / "a.txt", "second");
    CHECK(testing::read_bytes(dir / "a.txt") == "second");
    CHECK_FALSE(std::filesystem::exists(dir / "a.txt.tmp"));

    // The target is a directory: the rename fails, the temporary file must not stay behind.
    std::filesystem::create_directories(dir / "d");
    CHECK_THROWS_WITH_AS(write_text_atomic(dir / "d", "text"), doctest::Contains("(it is a directory)"), Error);
    CHECK_FALSE(std::filesystem::exists(dir / "d.tmp"));
    CHECK(std::filesystem::is_directory(dir / "d"));

    // A writer that throws: the old file stays, no .tmp.
    CHECK_THROWS_AS(
        write_file_atomic(dir / "a.txt", [](int, const std::string&) { BITGRAD_CHECK(false, "disk full, say"); }),
        Error);
    CHECK(testing::read_bytes(dir / "a.txt") == "second");
    CHECK_FALSE(std::filesystem::exists(dir / "a.txt.tmp"));
}
