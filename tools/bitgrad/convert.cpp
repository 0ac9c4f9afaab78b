// convert: PyTorch state dicts (FBI-LLM's released pytorch_model.bin) -> a safetensors model
// directory bitgrad reads, without running any of the pickle (io/torch_checkpoint.hpp).
#include <algorithm>
#include <cstdio>

#include <bitgrad/core/atomic_file.hpp>
#include <bitgrad/core/json.hpp>
#include <bitgrad/core/memory.hpp>
#include <bitgrad/format/torch_checkpoint.hpp>
#include <bitgrad/io/load_model.hpp>
#include <bitgrad/nn/summary.hpp>

#include "commands.hpp"
#include "options.hpp"

namespace bitgrad::cli {

cxxopts::Options convert_options() {
    cxxopts::Options o(
        "bitgrad convert",
        "pytorch_model.bin (torch.save's zip + pickle) -> model.safetensors, never executing the pickle");
    o.add_options()("in",
                    "a .bin file, or a directory: every *.bin in it (shards, as FBI-LLM's eval.py loads them) and its "
                    "config.json",
                    cxxopts::value<std::string>())("out", "model directory to write", cxxopts::value<std::string>())(
        "h,help", "help");
    return o;
}

int run_convert(const cxxopts::ParseResult& r) {
    require(r, "convert", {"in", "out"});
    const fs::path in = r["in"].as<std::string>(), out = output_dir(r, "out");
    std::error_code ec;
    std::vector<fs::path> inputs;
    std::optional<fs::path> config_path;
    if (fs::is_directory(in, ec)) {
        for (const auto& e : fs::directory_iterator(in))
            if (e.path().extension() == ".bin" && e.is_regular_file()) inputs.push_back(e.path());
        std::sort(inputs.begin(), inputs.end());
        if (inputs.empty()) throw UsageError("--in " + in.string() + ": no .bin files in this directory");
        if (fs::is_regular_file(in / "config.json", ec)) config_path = in / "config.json";
    } else if (fs::is_regular_file(in, ec)) {
        inputs.push_back(in);
    } else {
        throw UsageError("--in " + in.string() + ": no such file or directory");
    }
    ensure_directory(out);
    // A view that repeats its storage (stride 0, as expand() makes) is written out whole: said first.
    const std::vector<std::string> names =
        io::convert_torch_to_safetensors(inputs, out / "model.safetensors", [](const io::TorchExpandedView& v) {
            std::fprintf(stderr, "note: %s is a view of %llu bytes of storage that expands to %s (%s)\n",
                         v.name.c_str(), (unsigned long long)v.storage_bytes, v.shape.str().c_str(),
                         format_bytes(double(v.bytes)).c_str());
        });
    std::printf("converted %zu file(s), %zu tensors -> %s (%.2f MB)\n", inputs.size(), names.size(),
                (out / "model.safetensors").c_str(), double(fs::file_size(out / "model.safetensors")) / 1e6);
    if (!config_path) {
        std::printf("no config.json next to the input: copy the model's into %s to use it\n", out.c_str());
        return 0;
    }
    // FBI-LLM's config.json is a plain LlamaConfig: the wscale tensors are what say it is binarized.
    auto config = load_json(*config_path);
    const bool wscale =
        std::any_of(names.begin(), names.end(), [](const std::string& n) { return n.ends_with(".wscale"); });
    if (wscale && !config.contains("bitgrad_binarized")) config["bitgrad_binarized"] = true;
    write_text_atomic(out / "config.json", config.dump(2) + "\n");
    return io::with_model(out, [&](const auto& m) {  // loads what was written, strictly
        const auto stats = nn::param_stats(m);
        std::printf("%s loads as a %s LLaMA: %lld layers, hidden %lld, %.1fM parameters\n", out.c_str(),
                    m.config.binarized ? "binarized (FBI-LLM)" : "full-precision",
                    (long long)m.config.num_hidden_layers, (long long)m.config.hidden_size, double(stats.total) / 1e6);
        return 0;
    });
}

}  // namespace bitgrad::cli
