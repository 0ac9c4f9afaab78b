// 04_model_summary: build the FBI-LLM student and its full-precision teacher from one template and
// print their parameter counts and storage, larq-style.
//   ./build/examples/04_model_summary [tiny|130M|1.3B|7B]     (default 130M; 1.3B needs ~6 GB, 7B ~28 GB)
#include <bitgrad/bitgrad.hpp>
#include <cstdio>
#include <string>

using namespace bitgrad;

int main(int argc, char** argv) {
    const std::string preset = argc > 1 ? argv[1] : "130M";
    try {
        nn::LlamaConfig config = nn::LlamaConfig::preset(preset);
        Rng rng(0);
        {
            nn::FbiLlama<float> student(config, rng);  // FBI-Linear in every decoder layer
            std::printf("%s\n", nn::model_summary(student, "FBI-LLM " + preset + " (student)").c_str());
        }
        nn::DenseLlama<float> teacher(config, rng);  // the same template with nn::Linear
        std::printf("%s", nn::model_summary(teacher, "LLaMA " + preset + " (teacher)").c_str());
    } catch (const Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    }
    return 0;
}
