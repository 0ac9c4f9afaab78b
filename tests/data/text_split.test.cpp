#include "helpers.hpp"

#include <bitgrad/data/text_split.hpp>

using namespace bitgrad;

TEST_CASE("split_every holds out the chapters whose number is a multiple of n") {
    const std::string text =
        "Title page\n"
        "CHAPTER 1. Loomings.\nCall me Ishmael.\n"
        "CHAPTER 2. The Carpet-Bag.\nI stuffed a shirt.\n"
        "CHAPTER 3. The Spouter-Inn.\nEntering that gable-ended inn.\n"
        "CHAPTER 4. The Counterpane.\nUpon waking.\n";
    const auto s = data::split_every(text, 2);
    CHECK(s.unit == "chapters");
    CHECK(s.units == 4);
    CHECK(s.held_units == 2);
    CHECK(s.train ==
          "Title page\nCHAPTER 1. Loomings.\nCall me Ishmael.\n"
          "CHAPTER 3. The Spouter-Inn.\nEntering that gable-ended inn.\n");
    CHECK(s.val == "CHAPTER 2. The Carpet-Bag.\nI stuffed a shirt.\nCHAPTER 4. The Counterpane.\nUpon waking.\n");
}

TEST_CASE("split_every falls back to paragraphs in a text without chapter headings") {
    const std::string text = "one a\none b\n\ntwo\n\n\nthree\nthree b\n\nfour\n";
    const auto s = data::split_every(text, 2);
    CHECK(s.unit == "paragraphs");
    CHECK(s.units == 4);
    CHECK(s.held_units == 2);
    // Blank lines stay with the paragraph before them.
    CHECK(s.train == "one a\none b\n\nthree\nthree b\n\n");
    CHECK(s.val == "two\n\n\nfour\n");
    CHECK_THROWS_WITH_AS(data::split_every("just one paragraph\n", 3, "t.txt"),
                         doctest::Contains("t.txt: 1 paragraphs, fewer than 3: nothing to hold out"), Error);
    CHECK_THROWS_WITH_AS(data::split_every(text, 1, "t.txt"), doctest::Contains("leaves nothing to train on"), Error);
    CHECK_THROWS_WITH_AS(data::split_every("CHAPTER 99999999999999999999. x\n", 2, "t.txt"),
                         doctest::Contains("t.txt:1: chapter number 99999999999999999999 is out of range"), Error);
}

TEST_CASE("split_tail cuts at a line break - never inside a UTF-8 character") {
    const auto s = data::split_tail("aaaa\nbbbb\ncccc\ndddd\n", 0.25);
    CHECK(s.train == "aaaa\nbbbb\ncccc\n");
    CHECK(s.val == "dddd\n");
    // No line break after the cut point: back to the start of the two-byte character.
    const std::string e = "\xc3\xa9";                    // é
    const auto u = data::split_tail("ab" + e + e, 0.1);  // cut point 5: inside the second é
    CHECK(u.train == "ab" + e);
    CHECK(u.val == e);
    CHECK_THROWS_WITH_AS(data::split_tail("abc", 1.5, "t.txt"), doctest::Contains("must be in (0, 1)"), Error);
}
