// The LLaMA-1/2 tokenizer FBI-LLM used (32000-piece SentencePiece BPE), fetched and verified by
// scripts/fetch_llama2_tokenizer.sh (scripts/test.sh runs it; the file is under Meta's license and
// never committed). Built into the SentencePiece test program, which links the library; the path
// is that script's default (runs/tokenizers/llama2/tokenizer.model), or the environment variable
// BITGRAD_LLAMA2_TOKENIZER. A missing file fails the test: it never skips.
#if defined(BITGRAD_TEST_SENTENCEPIECE)
#include "helpers.hpp"

#include <bitgrad/data/sentencepiece.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

using namespace bitgrad;

TEST_CASE("LLaMA-2 tokenizer: the reference ids of a sentence" * doctest::test_suite("tokenizer")) {
    const char* from_env = std::getenv("BITGRAD_LLAMA2_TOKENIZER");
    const std::string path = from_env ? from_env : BITGRAD_LLAMA2_TOKENIZER_PATH;
    REQUIRE_MESSAGE(std::filesystem::exists(path),
                    path << " is missing: run bash scripts/fetch_llama2_tokenizer.sh (scripts/test.sh does)");
    const data::Tokenizer tok(path);
    CHECK(tok.vocab_size() == 32000);
    CHECK(tok.bos_id() == 1);
    // What Hugging Face's LlamaTokenizer returns for this sentence (add_special_tokens=False).
    const std::string sentence = "Hello, my dog is cute";
    CHECK(tok.encode(sentence) == std::vector<int>{15043, 29892, 590, 11203, 338, 274, 1082});
    CHECK(tok.decode(tok.encode(sentence)) == sentence);
}

#endif  // BITGRAD_TEST_SENTENCEPIECE
