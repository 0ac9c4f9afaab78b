#pragma once
// SentencePiece tokenizers through Debian's libsentencepiece (link with -lsentencepiece, or the
// CMake target bitgrad::sentencepiece). Not part of the umbrella header for that reason.
//   train_bpe_tokenizer: a BPE vocabulary on a text file, with identity normalisation (the text is
//     kept byte for byte), byte fallback (no unknown tokens) and digits split one by one.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <string>
#include <vector>

#include "bitgrad/core/error.hpp"

namespace bitgrad::data {

inline void train_bpe_tokenizer(const std::string& text_file, const std::string& model_prefix, int vocab_size,
                                int threads = 2) {
    const std::string args = "--input=" + text_file + " --model_prefix=" + model_prefix +
                             " --vocab_size=" + std::to_string(vocab_size) +
                             " --model_type=bpe --normalization_rule_name=identity --remove_extra_whitespaces=false"
                             " --byte_fallback=true --split_digits=true"
                             " --character_coverage=1.0 --pad_id=0 --unk_id=3 --bos_id=1 --eos_id=2"
                             " --max_sentence_length=100000 --minloglevel=2 --num_threads=" +
                             std::to_string(threads);
    const auto status = sentencepiece::SentencePieceTrainer::Train(args);
    BITGRAD_CHECK(status.ok(), "SentencePiece training on " << text_file << " failed: " << status.ToString());
}

class Tokenizer {
public:
    explicit Tokenizer(const std::string& model_path) {
        const auto status = sp_.Load(model_path);
        BITGRAD_CHECK(status.ok(), "cannot load tokenizer " << model_path << ": " << status.ToString());
    }
    int vocab_size() const { return sp_.GetPieceSize(); }
    int bos_id() const { return sp_.bos_id(); }
    std::vector<int> encode(const std::string& text) const {
        std::vector<int> ids;
        const auto status = sp_.Encode(text, &ids);
        BITGRAD_CHECK(status.ok(), "tokenizer encode failed: " << status.ToString());
        return ids;
    }
    std::string decode(const std::vector<int>& ids) const {
        std::string text;
        const auto status = sp_.Decode(ids, &text);
        BITGRAD_CHECK(status.ok(), "tokenizer decode failed: " << status.ToString());
        return text;
    }

private:
    sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace bitgrad::data
