// pack: a trained FBI-LLM checkpoint -> one packed file (sign bits, fp16 alpha/beta, bf16 or int8
// token tables, its tokenizer), then the file read back and compared with the float model.
#include <cstdio>

#include <bitgrad/infer/decoder.hpp>
#include <bitgrad/infer/pack_checks.hpp>
#include <bitgrad/infer/packed_file.hpp>
#include <bitgrad/io/load_model.hpp>
#include <bitgrad/nn/summary.hpp>

#include "commands.hpp"
#include "options.hpp"

namespace bitgrad::cli {

// --tables: the token table formats a packed file stores (infer/token_table.hpp's names).
static const EnumOption<infer::TableFormat> kTables =
    enum_option("tables", {infer::TableFormat::Bf16, infer::TableFormat::Int8}, infer::table_format_name);

cxxopts::Options pack_options() {
    cxxopts::Options o("bitgrad pack",
                       "Pack a trained FBI-LLM checkpoint into one file: sign bits, fp16 alpha/beta, bf16 or int8 "
                       "embedding and lm_head");
    o.add_options()("model", "checkpoint directory of a binarized model (config.json + model.safetensors)",
                    cxxopts::value<std::string>())("out", "packed file to write (e.g. model.packed.safetensors)",
                                                   cxxopts::value<std::string>())(
        "tables",
        "embedding and lm_head: " + kTables.names() +
            " (int8, the default: a scale per row, half the bytes, docs/inference.md measures the cost; bf16: "
            "the trained numbers rounded)",
        cxxopts::value<std::string>()->default_value(infer::table_format_name(infer::PackedFbiLinear::default_tables)))(
        "tokenizer",
        "SentencePiece model to carry in the file, so generate and eval need no --data (default: the model "
        "directory's tokenizer.model, which train and distill write)",
        cxxopts::value<std::string>())("data", "instead of --tokenizer: prepare's directory (its tokenizer.model)",
                                       cxxopts::value<std::string>())("h,help", "help");
    return o;
}

int run_pack(const cxxopts::ParseResult& r) {
    require(r, "pack", {"model", "out"});
    const infer::TableFormat tables = kTables(r);
    const fs::path dir = existing_dir(r, "model"), out = r["out"].as<std::string>();
    std::error_code ec;
    if (fs::is_directory(out, ec))
        throw UsageError("--out " + out.string() + ": is a directory (name the file to write)");
    infer::check_packable(io::load_config(dir / "config.json", sizeof(float)), dir.string());
    const auto model = io::load_model<nn::FbiLlama<float>>(dir);
    const infer::PackedLlama packed(*model, tables);
    const std::optional<data::Tokenizer> tok = find_tokenizer(r, dir, false);
    if (tok) try {
            infer::check_tokenizer_fits(tok->vocab_size(), model->config);
        } catch (const Error& e) { throw UsageError(e.what()); }
    infer::save_packed(out, packed, {{"source", dir.string()}}, tok ? tok->serialized() : std::string());
    if (!tok)
        std::fprintf(stderr,
                     "warning: no tokenizer found (--tokenizer, --data or %s/tokenizer.model): the packed "
                     "file carries none, generate and eval will need --data\n",
                     dir.c_str());
    // The packed file is read back and run against the float model on a probe sequence, so a
    // user sees what packing changed (fp16 alpha/beta, the embedding and lm_head format).
    const infer::PackProbe p = infer::probe_packed(infer::load_packed(out.string()), infer::FloatLlama(*model));
    const auto stats = nn::param_stats(*model);
    std::printf(
        "packed %s -> %s%s\n  float checkpoint %.2f MB, packed %.2f MB (%.1fx smaller)\n"
        "  logits of a %lld-token probe vs the float model: max |diff| with int8 activations (the default) "
        "%.3g (%.2g of max |logit|), with float activations (--activations float) %.3g (%.2g)\n",
        dir.string().c_str(), out.string().c_str(), tok ? " (with its tokenizer)" : "",
        double(stats.bytes_fp32()) / 1e6, double(fs::file_size(out)) / 1e6,
        double(stats.bytes_fp32()) / double(fs::file_size(out)), (long long)p.tokens, p.max_diff_int8,
        p.relative(p.max_diff_int8), p.max_diff, p.relative(p.max_diff));
    return 0;
}

}  // namespace bitgrad::cli
