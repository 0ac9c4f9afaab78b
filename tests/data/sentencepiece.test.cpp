// The SentencePiece wrapper (data/sentencepiece.hpp). Needs libsentencepiece, so this file is built
// as its own test program (with tests/main.cpp) linked with sentencepiece and sentencepiece_train,
// which defines BITGRAD_TEST_SENTENCEPIECE. The suite's *.test.cpp glob also picks the file up for
// bitgrad_tests, which does not link the library: there it compiles to nothing.
#if defined(BITGRAD_TEST_SENTENCEPIECE)
#include "helpers.hpp"

#include <bitgrad/data/sentencepiece.hpp>

#include <string>
#include <vector>

using namespace bitgrad;

namespace sentencepiece_test {

// A small generated corpus: words built from syllables, with digits and punctuation, one sentence
// a line (ASCII only: every other character must come out through byte fallback).
std::string corpus() {
    const std::vector<std::string> syllables = {"ka",  "lo",  "mi",  "nu",  "re",  "sa",  "ti", "vo",  "ber", "dan",
                                                "gel", "hor", "pin", "tas", "wen", "zul", "th", "ing", "er",  "on"};
    Rng rng(7);
    std::string text;
    for (int line = 0; line < 3000; ++line) {
        const int words = 4 + int(rng.uniform_int(8));
        for (int w = 0; w < words; ++w) {
            const int parts = 1 + int(rng.uniform_int(3));
            for (int p = 0; p < parts; ++p) text += syllables[rng.uniform_int(syllables.size())];
            if (rng.uniform() < 0.1) {  // (two appends: GCC 12 warns falsely on " " + std::string, -Wrestrict)
                text += ' ';
                text += std::to_string(rng.uniform_int(1000));
            }
            if (rng.uniform() < 0.1) text += ",";
            text += " ";
        }
        text += rng.uniform() < 0.5 ? ".\n" : "?\n";
    }
    return text;
}

// A trained tokenizer shared by the cases (training takes a fraction of a second).
struct Trained {
    testing::TempDir dir{"spm"};
    std::string model_path;
    Trained() {
        testing::write_bytes(dir / "corpus.txt", corpus());
        data::train_bpe_tokenizer((dir / "corpus.txt").string(), (dir / "tok").string(), 400);
        model_path = (dir / "tok.model").string();
    }
};

}  // namespace sentencepiece_test

TEST_CASE("sentencepiece: a trained BPE tokenizer round-trips text byte for byte") {
    sentencepiece_test::Trained t;
    data::Tokenizer tok(t.model_path);
    CHECK(tok.vocab_size() == 400);
    CHECK(tok.bos_id() == 1);
    const std::vector<std::string> texts = {
        "kalo miber 123 dan, tasing?",
        "Digits 0123456789 split: 42 + 7 = 49.",
        "double  spaces   and a UTF-8 char: caf\xc3\xa9 \xe2\x82\xac 5 (euro) \xf0\x9f\x99\x82!",
        "punctuation ~`!@#$%^&*()_-+={}[]|\\:;\"'<>,./",
        "tab\there",
        " leading space",
        "trailing space ",
        "line\nbreak",
    };
    for (const std::string& text : texts) {
        CAPTURE(text);
        const auto ids = tok.encode(text);
        CHECK_FALSE(ids.empty());
        for (int id : ids) {
            CHECK(id >= 0);
            CHECK(id < tok.vocab_size());
            CHECK(id != 3);  // byte fallback: never the unknown token
        }
        const std::string back = tok.decode(ids);
        CHECK(back == text);
        CHECK(back.size() == text.size());
    }
    // split_digits: every digit is a token of its own, so "2024" takes at least 4 tokens.
    CHECK(tok.encode("2024").size() >= 4);
}

TEST_CASE("sentencepiece: a missing or corrupt model file is an error naming the path") {
    testing::TempDir dir("spm-bad");
    const std::string missing = (dir / "missing.model").string();
    CHECK_THROWS_WITH_AS(data::Tokenizer{missing}, doctest::Contains(missing.c_str()), Error);
    const std::string corrupt = (dir / "corrupt.model").string();
    testing::write_bytes(corrupt, "this is not a sentencepiece model \x01\x02\x03\xff");
    CHECK_THROWS_WITH_AS(data::Tokenizer{corrupt}, doctest::Contains(corrupt.c_str()), Error);
    // A truncated real model is refused too.
    sentencepiece_test::Trained t;
    const std::string bytes = testing::read_bytes(t.model_path);
    REQUIRE(bytes.size() > 100);
    const std::string truncated = (dir / "truncated.model").string();
    testing::write_bytes(truncated, bytes.substr(0, bytes.size() / 2));
    CHECK_THROWS_WITH_AS(data::Tokenizer{truncated}, doctest::Contains(truncated.c_str()), Error);
}

TEST_CASE("sentencepiece: training on a missing file is an error naming it") {
    testing::TempDir dir("spm-train");
    const std::string missing = (dir / "no-such-corpus.txt").string();
    CHECK_THROWS_WITH_AS(data::train_bpe_tokenizer(missing, (dir / "tok").string(), 300),
                         doctest::Contains(missing.c_str()), Error);
}

TEST_CASE("sentencepiece: a model from its bytes (a packed file's) tokenizes as the file does") {
    sentencepiece_test::Trained t;
    const data::Tokenizer from_file(t.model_path);
    const data::Tokenizer from_bytes = data::Tokenizer::from_bytes(testing::read_bytes(t.model_path), "in memory");
    CHECK(from_file.serialized() == testing::read_bytes(t.model_path));
    const std::string text = "kalo miber 123 dan, tasing?";
    CHECK(from_bytes.encode(text) == from_file.encode(text));
    CHECK(from_bytes.vocab_size() == from_file.vocab_size());
    CHECK_THROWS_WITH_AS(data::Tokenizer::from_bytes("not a model", "packed.safetensors (tokenizer.model)"),
                         doctest::Contains("cannot load tokenizer packed.safetensors (tokenizer.model)"), Error);
}

TEST_CASE("sentencepiece: a vocabulary below the pieces the text needs is refused with the size it needs") {
    testing::TempDir dir("spm-small");
    // 4 special tokens + 256 byte pieces + the corpus's distinct characters: 256 cannot hold them.
    testing::write_bytes(dir / "corpus.txt", sentencepiece_test::corpus());
    CHECK_THROWS_WITH_AS(data::train_bpe_tokenizer((dir / "corpus.txt").string(), (dir / "tok").string(), 256),
                         doctest::Contains("a vocabulary of 256 tokens is too small"), Error);
    CHECK_THROWS_WITH_AS(data::train_bpe_tokenizer((dir / "corpus.txt").string(), (dir / "tok").string(), 256),
                         doctest::Contains("use a vocabulary size of"), Error);
}

#endif  // BITGRAD_TEST_SENTENCEPIECE
