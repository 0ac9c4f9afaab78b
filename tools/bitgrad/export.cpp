// export: a bitgrad model directory -> Hugging Face's layout, as FBI-LLM's reference code and
// transformers read it (docs/interop.md lists the tensor names).
#include <cstdio>

#include <bitgrad/core/atomic_file.hpp>
#include <bitgrad/io/hf_model.hpp>
#include <bitgrad/io/load_model.hpp>

#include "commands.hpp"
#include "options.hpp"

namespace bitgrad::cli {

// --dtype and --format: the library's names (io/hf_checkpoint.hpp), parsed by its parsers (--dtype
// also takes bf16, f16, f32).
static const EnumOption<io::HfDtype> kDtype = [] {
    auto o = enum_option("dtype", {io::HfDtype::F32, io::HfDtype::BF16, io::HfDtype::F16}, io::torch_dtype_name);
    o.parse = io::parse_hf_dtype;
    return o;
}();
static const EnumOption<io::HfFormat> kFormat =
    enum_option("format", {io::HfFormat::Safetensors, io::HfFormat::Pytorch, io::HfFormat::Both}, io::hf_format_name);

cxxopts::Options export_options() {
    cxxopts::Options o(
        "bitgrad export",
        "Write a model in Hugging Face's layout: config.json + model.safetensors and/or pytorch_model.bin");
    o.add_options()("model", "bitgrad model directory (final/ or checkpoints/step-N)", cxxopts::value<std::string>())(
        "out", "directory to write", cxxopts::value<std::string>())(
        "dtype", kDtype.names() + ": float32 keeps the latent weights exactly, as FBI-LLM trains them",
        cxxopts::value<std::string>()->default_value(io::torch_dtype_name(io::HfDtype::F32)))(
        "format", kFormat.names() + " (pytorch_model.bin, torch.save's layout)",
        cxxopts::value<std::string>()->default_value(io::hf_format_name(io::HfFormat::Both)))(
        "tokenizer", "SentencePiece model to copy as tokenizer.model (e.g. prepare's DATA/tokenizer.model)",
        cxxopts::value<std::string>())("h,help", "help");
    return o;
}

int run_export(const cxxopts::ParseResult& r) {
    require(r, "export", {"model", "out"});
    const io::HfDtype dtype = kDtype(r);
    const io::HfFormat format = kFormat(r);
    const fs::path dir = existing_dir(r, "model"), out = output_dir(r, "out");
    const std::optional<fs::path> tokenizer =
        r.count("tokenizer") ? std::optional(existing_file(r, "tokenizer")) : std::nullopt;
    return io::with_model(dir, [&](const auto& m) {
        io::save_hf_model(out, m, m.config, dtype, format);
        if (tokenizer) write_text_atomic(out / "tokenizer.model", read_text(*tokenizer));
        std::printf("exported %s -> %s (%s", dir.c_str(), out.c_str(), io::torch_dtype_name(dtype));
        for (const char* f : {"config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.model"}) {
            std::error_code ec;
            if (fs::exists(out / f, ec)) {
                const double bytes = double(fs::file_size(out / f));
                std::printf(", %s %.1f %s", f, bytes < 1e6 ? bytes / 1e3 : bytes / 1e6, bytes < 1e6 ? "kB" : "MB");
            }
        }
        std::printf(")\n");
        return 0;
    });
}

}  // namespace bitgrad::cli
