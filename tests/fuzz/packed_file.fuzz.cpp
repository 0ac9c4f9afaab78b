// Fuzz target: infer::load_packed, the reader of `bitgrad pack`'s files (sign bits, fp16 alpha and
// beta, bf16 tables, the config in the metadata). A file that loads must be a model that runs: a
// prefill of two tokens and a decode step (ASan checks every read stays inside the tensors the
// config promised), and saving it again then loading that copy must give the same bytes and the
// same logits, bit for bit. The tokenizer it may carry must read back checked and the same.
#include <bitgrad/infer/packed_file.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

#include "harness.hpp"

namespace {

std::vector<float> run(const bitgrad::infer::PackedLlama& m) {
    const auto& c = m.config();
    const int64_t capacity = std::min<int64_t>(3, c.max_position_embeddings);
    bitgrad::infer::KvCache cache(c, capacity);
    std::vector<float> logits(std::size_t(c.vocab_size)), all;
    const int32_t ids[3] = {0, int32_t(c.vocab_size - 1), int32_t(c.vocab_size / 2)};
    const int64_t prefill = std::min<int64_t>(2, capacity);
    m.forward(ids, prefill, cache, logits.data());
    all = logits;
    if (capacity > prefill) {
        m.forward(ids + prefill, 1, cache, logits.data());
        all.insert(all.end(), logits.begin(), logits.end());
    }
    return all;
}

void load_and_check(const std::string& path) {
    const bitgrad::infer::PackedLlama m = bitgrad::infer::load_packed(path);
    const std::vector<float> logits = run(m);
    const auto tokenizer = bitgrad::infer::load_packed_tokenizer(path);
    const std::string copy = path + ".resaved";
    bitgrad::infer::save_packed(copy, m, {}, tokenizer.value_or(""));
    const bitgrad::infer::PackedLlama again = bitgrad::infer::load_packed(copy);
    const auto tokenizer2 = bitgrad::infer::load_packed_tokenizer(copy);
    std::filesystem::remove(copy);
    FUZZ_EXPECT(tokenizer.value_or("") == tokenizer2.value_or(""), "the re-saved tokenizer differs");
    FUZZ_EXPECT(again.bytes() == m.bytes(),
                "re-saved model holds " << again.bytes() << " bytes, the first " << m.bytes());
    const std::vector<float> logits2 = run(again);
    FUZZ_EXPECT(logits.size() == logits2.size() && std::memcmp(logits.data(), logits2.data(), 4 * logits.size()) == 0,
                "the re-saved model gives other logits");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    const std::string& path = fuzz::write_temp_file("packed_file", data, size);
    try {
        load_and_check(path);
    } catch (const bitgrad::Error&) {  // a refusal: the expected outcome for most inputs
    }
    return 0;
}
