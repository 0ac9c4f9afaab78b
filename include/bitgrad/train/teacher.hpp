#pragma once
// A distillation teacher from a model directory (config.json + model.safetensors, or Hugging Face's
// sharded layout; F32, F16 or BF16 tensors), held the way `storage` says:
//   TeacherStorage::Bf16   infer::FrozenLlama: 2 bytes a weight, its products in bf16
//   TeacherStorage::Float  nn::DenseLlama<float>: 4 bytes a weight
//   TeacherStorage::Auto   bf16 when the files hold F16/BF16 tensors (a half-precision teacher stays
//                          half), else float
//
//   train::LoadedTeacher t = train::load_teacher(dir, train::TeacherStorage::Auto);
//   train::Trainer<float, nn::FbiLlama<float>> trainer(student, t.teacher, shard, options);  // t outlives it
//   nn::LlamaConfig s = train::student_config(t.config, seq_len, Ste::Identity);  // the teacher's shape
#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>

#include "bitgrad/core/error.hpp"
#include "bitgrad/infer/frozen_llama.hpp"
#include "bitgrad/io/config_json.hpp"
#include "bitgrad/io/hf_model.hpp"
#include "bitgrad/nn/llama.hpp"
#include "bitgrad/train/distill.hpp"

namespace bitgrad::train {

enum class TeacherStorage { Auto, Bf16, Float };

inline const char* teacher_storage_name(TeacherStorage s) {
    switch (s) {  // no default: -Wswitch names a new value here
        case TeacherStorage::Auto: return "auto";
        case TeacherStorage::Bf16: return "bf16";
        case TeacherStorage::Float: return "float";
    }
    return "?";  // not reached
}
inline std::optional<TeacherStorage> parse_teacher_storage(std::string_view s) {
    for (TeacherStorage t : {TeacherStorage::Auto, TeacherStorage::Bf16, TeacherStorage::Float})
        if (s == teacher_storage_name(t)) return t;
    return std::nullopt;
}

// The teacher's model (one of the two, as `storage` is) and the callable the Trainer runs. The
// callable refers to the model: keep the LoadedTeacher alive (and in place) while it is used.
struct LoadedTeacher {
    nn::LlamaConfig config;
    TeacherStorage storage = TeacherStorage::Float;  // Bf16 or Float, never Auto
    std::unique_ptr<infer::FrozenLlama> frozen;
    std::unique_ptr<nn::DenseLlama<float>> dense;
    Teacher<float> teacher;
    // The bytes of its weights (bf16 matrices and float norms, or float everything).
    double bytes() const { return frozen ? double(frozen->bytes()) : double(dense->num_parameters()) * 4; }
};

inline LoadedTeacher load_teacher(const std::filesystem::path& dir, TeacherStorage storage) {
    LoadedTeacher t;
    t.config = io::load_config(dir / "config.json", sizeof(float));
    BITGRAD_CHECK(!t.config.binarized, (dir / "config.json").string()
                                           << ": \"binarized\" is true; the teacher must be a full-precision model");
    const io::HfCheckpoint files(dir);
    if (storage == TeacherStorage::Bf16 || (storage == TeacherStorage::Auto && files.half_precision())) {
        t.storage = TeacherStorage::Bf16;
        t.frozen = std::make_unique<infer::FrozenLlama>(infer::FrozenLlama::load(files, t.config));
        t.teacher = frozen_teacher(*t.frozen);
    } else {
        t.storage = TeacherStorage::Float;
        Rng rng(0);
        t.dense = std::make_unique<nn::DenseLlama<float>>(t.config, rng);
        io::load_hf_weights(files, *t.dense, t.config.tie_word_embeddings);
        t.dense->eval();
        t.teacher = llama_teacher<float>(*t.dense);
    }
    return t;
}

// The student of `teacher` in the teacher's shape: its context at least seq_len, binarized layers
// with estimator `ste`.
inline nn::LlamaConfig student_config(const nn::LlamaConfig& teacher, int64_t seq_len, Ste ste) {
    nn::LlamaConfig c = teacher;
    c.max_position_embeddings = std::max(c.max_position_embeddings, seq_len);
    c.ste = ste;
    c.binarized = true;
    return c;
}

}  // namespace bitgrad::train
