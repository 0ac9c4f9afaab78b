#pragma once
// Training checkpoints: one directory per save, made complete before it becomes visible.
//
//   <root>/step-00000100/config.json            Hugging Face LlamaConfig keys (+ bitgrad_binarized)
//                       /model.safetensors      weights under the spec's tensor names
//                       /optimizer.safetensors  AdamW moments, "<param>.exp_avg" / ".exp_avg_sq"
//                       /trainer_state.json     step, seed, threads, sampler RNG state, losses, ...
//                       /COMPLETE               the completion marker, written last
// Protocol (every file and every changed directory is fsynced before the next step):
//   1. write every file into step-N.tmp/, the COMPLETE marker last;
//   2. if step-N/ exists (the same step saved again: resume of a finished run, Ctrl-C on a
//      --save-every step), rename it aside to step-N.old/;
//   3. rename step-N.tmp/ to step-N/;
//   4. delete step-N.old/ (its marker first), then prune beyond keep_last the same way.
// A kill at any moment leaves a marked step-N/ or step-N.old/ with every file complete, and only a
// directory with the marker counts (latest_checkpoint), so a half-written or half-deleted one is
// ignored with a warning. The previous copy is never deleted before the new one is in place.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bitgrad/core/json.hpp"
#include "bitgrad/format/safetensors.hpp"
#include "bitgrad/io/config_json.hpp"
#include "bitgrad/io/hf_model.hpp"
#include "bitgrad/nn/module.hpp"
#include "bitgrad/optim/adamw.hpp"

namespace bitgrad::io {

inline constexpr const char* kCheckpointMarker = "COMPLETE";

namespace detail {
// Test hook: called with the name of each stage of save_checkpoint ("files_written",
// "old_renamed", "new_renamed", "old_removed"); a test throws from it to simulate a crash there.
inline std::function<void(const char*)>& checkpoint_fault_hook() {
    static std::function<void(const char*)> hook;
    return hook;
}
inline void checkpoint_stage(const char* stage) {
    if (checkpoint_fault_hook()) checkpoint_fault_hook()(stage);
}
inline std::string step_dir_name(int64_t step) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
    return buf;
}
// "step-00000100.old" -> {100, ".old"}; {-1, ""} for a name that is not a checkpoint directory.
inline std::pair<int64_t, std::string> parse_step_dir(const std::string& name) {
    if (name.rfind("step-", 0) != 0) return {-1, ""};
    std::size_t i = 5;
    int64_t step = 0;
    while (i < name.size() && name[i] >= '0' && name[i] <= '9' && step < (int64_t(1) << 56))
        step = step * 10 + (name[i++] - '0');
    if (i == 5) return {-1, ""};
    return {step, name.substr(i)};
}
// Deletes a checkpoint directory so that no moment of the deletion looks complete: the marker goes
// first (and is made durable), then the rest.
inline void remove_checkpoint_dir(const std::filesystem::path& dir) {
    std::error_code ec;
    if (std::filesystem::remove(dir / kCheckpointMarker, ec)) fsync_directory(dir);
    remove_tree(dir);
}
}  // namespace detail

template <class T>
std::vector<std::pair<std::string, Tensor<T>>> model_tensors(const nn::Module<T>& model) {
    std::vector<std::pair<std::string, Tensor<T>>> out;
    for (auto& p : model.named_parameters()) out.push_back({p.name, p.var.value()});
    return out;
}

// Saves the model alone (config.json + model.safetensors) into dir, atomically per file; config.json
// holds config with the STE the layers hold (saved_config).
template <class T>
void save_model(const std::filesystem::path& dir, const nn::Module<T>& model, const nn::LlamaConfig& config) {
    const nn::LlamaConfig written = saved_config(model, config, "save_model " + dir.string());
    ensure_directory(dir);
    save_config(dir / "config.json", written, std::is_same_v<T, double> ? "float64" : "float32");
    save_safetensors(dir / "model.safetensors", model_tensors(model), {{"format", "pt"}});
}

// Loads dir/model.safetensors into model (strict names and shapes). Weights that are not finite
// are refused, naming the tensor: a NaN model only prints "perplexity nan" or garbage text, so it
// is better to stop at the file (allow_nonfinite = true loads them anyway, for debugging).
template <class T>
void load_model_weights(const std::filesystem::path& dir, nn::Module<T>& model, bool allow_nonfinite = false) {
    const std::string path = (dir / "model.safetensors").string();
    auto file = load_safetensors<T>(path);
    if (!allow_nonfinite)
        for (auto& [name, t] : file.tensors) {
            int64_t bad = 0, first = -1;
            for (int64_t i = 0; i < t.numel(); ++i)
                if (!std::isfinite(t[i])) {
                    if (first < 0) first = i;
                    ++bad;
                }
            BITGRAD_CHECK(bad == 0, path << ": tensor " << name << " holds " << bad
                                         << " non-finite values (NaN or Inf; the first at flat index " << first
                                         << ", value " << t[first] << "): the model diverged or the file is damaged");
        }
    try {
        model.load_state_dict(file.by_name());
    } catch (const Error& e) { BITGRAD_CHECK(false, path << ": " << e.what()); }
}

// Writes a full checkpoint for `step`; returns its directory.
template <class T>
std::filesystem::path save_checkpoint(const std::filesystem::path& root, int64_t step, const nn::Module<T>& model,
                                      const nn::LlamaConfig& config, const optim::AdamW<T>& optimizer,
                                      const nlohmann::json& trainer_state, int keep_last) {
    namespace fs = std::filesystem;
    ensure_directory(root);
    const std::string name = detail::step_dir_name(step);
    const fs::path final_dir = root / name, tmp = root / (name + ".tmp"), old = root / (name + ".old");
    remove_tree(tmp);  // never a checkpoint: at most a save interrupted before its rename
    ensure_directory(tmp);
    save_model(tmp, model, config);
    save_safetensors(tmp / "optimizer.safetensors", optimizer.state());
    write_text_atomic(tmp / "trainer_state.json", trainer_state.dump(1) + "\n");
    write_text_atomic(tmp / kCheckpointMarker, "step " + std::to_string(step) + "\n");
    fsync_directory(tmp);
    detail::checkpoint_stage("files_written");
    if (fs::exists(final_dir)) {
        if (fs::exists(old)) detail::remove_checkpoint_dir(old);  // stale: final_dir is at least as new
        std::error_code ec;
        fs::rename(final_dir, old, ec);
        BITGRAD_CHECK(!ec, "renaming " << final_dir.string() << " to " << old.string() << ": " << ec.message());
        fsync_directory(root);
        detail::checkpoint_stage("old_renamed");
    }
    std::error_code ec;
    fs::rename(tmp, final_dir, ec);
    BITGRAD_CHECK(!ec, "renaming " << tmp.string() << " to " << final_dir.string() << ": " << ec.message());
    fsync_directory(root);
    detail::checkpoint_stage("new_renamed");
    if (fs::exists(old)) {
        detail::remove_checkpoint_dir(old);
        detail::checkpoint_stage("old_removed");
    }
    // Prune: keep the newest keep_last complete checkpoints.
    std::vector<fs::path> complete;
    for (auto& e : fs::directory_iterator(root)) {
        const auto [n, suffix] = detail::parse_step_dir(e.path().filename().string());
        if (e.is_directory() && n >= 0 && suffix.empty() && fs::exists(e.path() / kCheckpointMarker))
            complete.push_back(e.path());
    }
    std::sort(complete.begin(), complete.end());
    for (std::size_t i = 0; keep_last > 0 && i + std::size_t(keep_last) < complete.size(); ++i)
        detail::remove_checkpoint_dir(complete[i]);
    return final_dir;
}

// The newest complete checkpoint under root (nullopt if none): a step-N/ (or, after a crash between
// the two renames of a re-save, step-N.old/) that holds the COMPLETE marker. Directories without
// it are reported through warn and skipped.
inline std::optional<std::filesystem::path> latest_checkpoint(
    const std::filesystem::path& root, const std::function<void(const std::string&)>& warn = nullptr) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(root)) return std::nullopt;
    std::optional<fs::path> best;
    std::pair<int64_t, int> best_key{-1, 0};  // (step, 1 for step-N over 0 for step-N.old)
    for (auto& e : fs::directory_iterator(root)) {
        const auto [step, suffix] = detail::parse_step_dir(e.path().filename().string());
        if (!e.is_directory() || step < 0 || (suffix != "" && suffix != ".old" && suffix != ".tmp")) continue;
        if (suffix == ".tmp" || !fs::exists(e.path() / kCheckpointMarker)) {
            if (warn)
                warn("ignoring incomplete checkpoint " + e.path().string() + " (no " + kCheckpointMarker +
                     " marker: an interrupted save or deletion)");
            continue;
        }
        const std::pair<int64_t, int> key{step, suffix.empty() ? 1 : 0};
        if (key > best_key) {
            best_key = key;
            best = e.path();
        }
    }
    return best;
}

template <class T>
void load_optimizer_state(const std::filesystem::path& dir, optim::AdamW<T>& optimizer) {
    const std::string path = (dir / "optimizer.safetensors").string();
    auto file = load_safetensors<T>(path).by_name();
    auto state = optimizer.state();
    BITGRAD_CHECK(file.size() == state.size(), path << ": " << file.size() << " tensors, expected " << state.size()
                                                    << " optimizer moments for this model");
    for (auto& [name, t] : state) {
        auto it = file.find(name);
        BITGRAD_CHECK(it != file.end(), path << ": missing " << name);
        BITGRAD_CHECK(it->second.shape() == t.shape(),
                      path << ": " << name << " has shape " << it->second.shape() << ", expected " << t.shape());
        Tensor<T>(t).copy_from(it->second);  // t shares storage with the optimizer's moment
    }
}

}  // namespace bitgrad::io
