// info: the summary of a model directory, or of a model the shape options describe.
#include <cstdio>

#include <bitgrad/io/load_model.hpp>
#include <bitgrad/nn/summary.hpp>

#include "commands.hpp"
#include "options.hpp"

namespace bitgrad::cli {

cxxopts::Options info_options() {
    cxxopts::Options o("bitgrad info", "Model summary");
    o.add_options()("model", "model directory (else --preset)", cxxopts::value<std::string>())(
        "binarized", "with --preset: the FBI student")("h,help", "help");
    add_model_options(o);
    return o;
}

int run_info(const cxxopts::ParseResult& r) {
    if (r.count("model"))
        return io::with_model(existing_dir(r, "model"), [&](auto& m) {
            std::printf("%s", nn::model_summary(m, r["model"].as<std::string>()).c_str());
            return 0;
        });
    auto c = model_config(r, 0, 2048);
    Rng rng(0);
    if (r.count("binarized"))
        std::printf("%s", nn::model_summary(nn::FbiLlama<float>(c, rng), "FBI-LLM").c_str());
    else
        std::printf("%s", nn::model_summary(nn::DenseLlama<float>(c, rng), "LLaMA").c_str());
    return 0;
}

}  // namespace bitgrad::cli
