#pragma once
// Training checkpoints: one directory per save, made complete before it becomes visible.
//
//   <root>/step-00000100/config.json            Hugging Face LlamaConfig keys (+ bitgrad_binarized)
//                       /model.safetensors      weights under the spec's tensor names
//                       /optimizer.safetensors  AdamW moments, "<param>.exp_avg" / ".exp_avg_sq"
//                       /trainer_state.json     step, seed, threads, sampler RNG state, losses, ...
// Written into "step-00000100.tmp/", each file fsynced, then the directory is renamed and the root
// fsynced: the rename is the completion marker. A crash leaves at worst a ".tmp" directory, which
// latest_checkpoint() skips with a warning; earlier checkpoints are never touched until a newer
// one is complete, and only then are the oldest beyond keep_last removed.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bitgrad/io/config_json.hpp"
#include "bitgrad/io/safetensors.hpp"
#include "bitgrad/nn/module.hpp"
#include "bitgrad/optim/adamw.hpp"

namespace bitgrad::io {

namespace detail {
// Test hook: called after the files are written and before the rename (simulates a crash).
inline std::function<void()>& checkpoint_fault_hook() {
    static std::function<void()> hook;
    return hook;
}
inline std::string step_dir_name(int64_t step) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
    return buf;
}
}  // namespace detail

template <class T>
std::vector<std::pair<std::string, Tensor<T>>> model_tensors(const nn::Module<T>& model) {
    std::vector<std::pair<std::string, Tensor<T>>> out;
    for (auto& p : model.named_parameters()) out.push_back({p.name, p.var.value()});
    return out;
}

// Saves the model alone (config.json + model.safetensors) into dir, atomically per file.
template <class T>
void save_model(const std::filesystem::path& dir, const nn::Module<T>& model, const nn::LlamaConfig& config) {
    std::filesystem::create_directories(dir);
    save_config(dir / "config.json", config);
    save_safetensors(dir / "model.safetensors", model_tensors(model), {{"format", "pt"}});
}

template <class T>
void load_model_weights(const std::filesystem::path& dir, nn::Module<T>& model) {
    auto file = load_safetensors<T>((dir / "model.safetensors").string());
    try {
        model.load_state_dict(file.by_name());
    } catch (const Error& e) {
        BITGRAD_CHECK(false, (dir / "model.safetensors").string() << ": " << e.what());
    }
}

// Writes a full checkpoint for `step`; returns its directory.
template <class T>
std::filesystem::path save_checkpoint(const std::filesystem::path& root, int64_t step, const nn::Module<T>& model,
                                      const nn::LlamaConfig& config, const optim::AdamW<T>& optimizer,
                                      const nlohmann::json& trainer_state, int keep_last) {
    namespace fs = std::filesystem;
    fs::create_directories(root);
    const fs::path final_dir = root / detail::step_dir_name(step), tmp = root / (detail::step_dir_name(step) + ".tmp");
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    save_model(tmp, model, config);
    save_safetensors(tmp / "optimizer.safetensors", optimizer.state());
    write_text_atomic(tmp / "trainer_state.json", trainer_state.dump(1) + "\n");
    if (detail::checkpoint_fault_hook()) detail::checkpoint_fault_hook()();
    fsync_directory(tmp);
    fs::remove_all(final_dir);
    std::error_code ec;
    fs::rename(tmp, final_dir, ec);
    BITGRAD_CHECK(!ec, "renaming " << tmp << " to " << final_dir << ": " << ec.message());
    fsync_directory(root);
    // Prune: keep the newest keep_last complete checkpoints.
    std::vector<fs::path> complete;
    for (auto& e : fs::directory_iterator(root)) {
        const std::string name = e.path().filename().string();
        if (e.is_directory() && name.rfind("step-", 0) == 0 && name.find(".tmp") == std::string::npos) complete.push_back(e.path());
    }
    std::sort(complete.begin(), complete.end());
    for (std::size_t i = 0; keep_last > 0 && i + std::size_t(keep_last) < complete.size(); ++i) fs::remove_all(complete[i]);
    return final_dir;
}

// The newest complete checkpoint under root (nullopt if none). Incomplete ".tmp" directories are
// reported through warn and skipped.
inline std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& root,
                                                              const std::function<void(const std::string&)>& warn = nullptr) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(root)) return std::nullopt;
    std::optional<fs::path> best;
    for (auto& e : fs::directory_iterator(root)) {
        const std::string name = e.path().filename().string();
        if (!e.is_directory() || name.rfind("step-", 0) != 0) continue;
        if (name.size() > 4 && name.substr(name.size() - 4) == ".tmp") {
            if (warn) warn("ignoring incomplete checkpoint " + e.path().string() + " (interrupted save)");
            continue;
        }
        if (!fs::exists(e.path() / "trainer_state.json")) {
            if (warn) warn("ignoring " + e.path().string() + ": no trainer_state.json");
            continue;
        }
        if (!best || e.path().filename() > best->filename()) best = e.path();
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
        BITGRAD_CHECK(it->second.shape() == t.shape(), path << ": " << name << " has shape " << it->second.shape() << ", expected " << t.shape());
        Tensor<T>(t).copy_from(it->second);  // t shares storage with the optimizer's moment
    }
}

inline nlohmann::json load_json(const std::filesystem::path& path) {
    std::ifstream f(path);
    BITGRAD_CHECK(f, "cannot open " << path);
    try {
        return nlohmann::json::parse(f);
    } catch (const nlohmann::json::exception& e) {
        BITGRAD_CHECK(false, path.string() << ": not valid JSON: " << e.what());
    }
    return {};
}

}  // namespace bitgrad::io
