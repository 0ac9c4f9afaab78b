#pragma once
// SentencePiece tokenizers through Debian's libsentencepiece (link with -lsentencepiece_train
// -lsentencepiece; in bitgrad's own build, the CMake target bitgrad::sentencepiece). Not part of the
// umbrella header for that reason.
//   train_bpe_tokenizer: a BPE vocabulary on a text file, with identity normalisation (the text is
//     kept byte for byte), byte fallback (no unknown tokens) and digits split one by one.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdio>
#include <memory>
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
    if (status.ok()) return;
    // SentencePiece's advice for a vocabulary below the pieces it must hold ("... required_chars.
    // 256 vs 294. Increase vocab_size or decrease character_coverage ...") names its own options;
    // bitgrad keeps every character (coverage 1.0), so the vocabulary size is the one to change.
    const std::string message = status.ToString();
    long given = 0, needed = 0;
    const auto at = message.find("required_chars. ");
    if (at != std::string::npos && std::sscanf(message.c_str() + at + 16, "%ld vs %ld", &given, &needed) == 2)
        BITGRAD_CHECK(false, "a vocabulary of " << given << " tokens is too small for " << text_file
                                                << ": it needs at least " << needed
                                                << " (4 special tokens, 256 byte-fallback pieces and each distinct "
                                                   "character of the text); use a vocabulary size of "
                                                << needed << " or more");
    BITGRAD_CHECK(false, "SentencePiece training on " << text_file << " failed: " << message);
}

class Tokenizer {
public:
    explicit Tokenizer(const std::string& model_path) {
        const auto status = sp_->Load(model_path);
        BITGRAD_CHECK(status.ok(), "cannot load tokenizer " << model_path << ": " << status.ToString());
    }
    // A model held in memory (e.g. the one a packed file carries); `where` names it in errors.
    static Tokenizer from_bytes(const std::string& bytes, const std::string& where) {
        Tokenizer t;
        const auto status = t.sp_->LoadFromSerializedProto(bytes);
        BITGRAD_CHECK(status.ok(), "cannot load tokenizer " << where << ": " << status.ToString());
        return t;
    }
    int vocab_size() const { return sp_->GetPieceSize(); }
    int bos_id() const { return sp_->bos_id(); }
    std::vector<int> encode(const std::string& text) const {
        std::vector<int> ids;
        const auto status = sp_->Encode(text, &ids);
        BITGRAD_CHECK(status.ok(), "tokenizer encode failed: " << status.ToString());
        return ids;
    }
    std::string decode(const std::vector<int>& ids) const {
        std::string text;
        const auto status = sp_->Decode(ids, &text);
        BITGRAD_CHECK(status.ok(), "tokenizer decode failed: " << status.ToString());
        return text;
    }
    // The model's bytes, as a .model file holds them.
    std::string serialized() const { return sp_->serialized_model_proto(); }

private:
    Tokenizer() = default;
    std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_ =
        std::make_unique<sentencepiece::SentencePieceProcessor>();
};

}  // namespace bitgrad::data
