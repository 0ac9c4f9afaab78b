// The FBI-130M training step, as train::Trainer runs it: the teacher's logits (no grad), the
// student's forward, the fused lm_head + loss, backward, the gradient norm and AdamW with the clip
// factor. One JSON line per (loss, threads): tokens/s, seconds per phase, peak RSS, achieved
// GFLOP/s and its fraction of the GEMM peak measured in the same run on the step's largest GEMM
// shape ([B*T x C] x [C x V]). Baseline to compare with: bench/pytorch/run.sh (the same step in
// PyTorch).
//   usage: llama_bench [--preset 130M] [--shapes 4x256,1x512] [--steps 3] [--threads 1,2]
//                      [--loss ad,ce] [--precision fp32,bf16] [--profile]   (--profile: per-op table on stderr)
//   --shapes lists batch x sequence length; --batch B --seq T is the same as --shapes BxT.
// The GEMM peak is measured in the precision of the line: the float GEMM for fp32, kernels::gemm_bf16
// (whichever kernel this CPU runs: "bf16_kernel" in the line) for bf16.
// FLOPs counted: 2 per multiply-add of every linear layer (student forward + backward = 6N,
// teacher forward = 2N per token, N = matmul parameters), plus causal attention (QK^T and PV:
// 2 T^2 C per sequence and layer forward, 2.5x that backward). Peak RSS is reset between lines
// (/proc/self/clear_refs), so each line reports its own.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.hpp"

using namespace bitgrad;

namespace {
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }
}  // namespace

int main(int argc, char** argv) {
    std::string preset = "130M", threads_list = "1,2", loss_list = "ad,ce", precision_list = "fp32,bf16";
    std::string shapes_list = "4x256,1x512", batch_s, seq_s;
    int steps = 3;
    bool profile = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "llama_bench: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--preset")
            preset = next();
        else if (a == "--shapes")
            shapes_list = next();
        else if (a == "--batch")
            batch_s = next();
        else if (a == "--seq")
            seq_s = next();
        else if (a == "--steps")
            steps = std::stoi(next());
        else if (a == "--threads")
            threads_list = next();
        else if (a == "--loss")
            loss_list = next();
        else if (a == "--precision")
            precision_list = next();
        else if (a == "--profile")
            profile = true;
        else {
            std::fprintf(stderr, "llama_bench: unknown option %s\n", a.c_str());
            return 2;
        }
    }
    if (!batch_s.empty() || !seq_s.empty())
        shapes_list = (batch_s.empty() ? "4" : batch_s) + "x" + (seq_s.empty() ? "256" : seq_s);
    std::vector<std::pair<int64_t, int64_t>> shapes;
    for (const std::string& s : bench::split_list(shapes_list)) {
        long b = 0, t = 0;
        char extra = 0;
        if (std::sscanf(s.c_str(), "%ldx%ld%c", &b, &t, &extra) != 2 || b < 1 || t < 1) {
            std::fprintf(stderr, "llama_bench: --shapes wants BxT items such as 4x256, got '%s'\n", s.c_str());
            return 2;
        }
        shapes.emplace_back(b, t);
    }
    nn::LlamaConfig config = nn::LlamaConfig::preset(preset);
    for (auto& [b, t] : shapes) config.max_position_embeddings = std::max<int64_t>(config.max_position_embeddings, t);
    Rng rng(0);
    nn::FbiLlama<float> student(config, rng);
    optim::AdamW<float> optimizer(optim::param_groups(student.named_parameters(), 0.1), {});
    const auto params = student.parameters();

    int64_t matmul_params = config.hidden_size * config.vocab_size;  // lm_head
    for (auto& p : student.named_parameters())
        if (p.kind == ParamKind::Binary) matmul_params += p.var.numel();

    for (const std::string& precision_s : bench::split_list(precision_list)) {
        const auto precision = parse_precision(precision_s);
        if (!precision) {
            std::fprintf(stderr, "llama_bench: unknown precision %s\n", precision_s.c_str());
            return 2;
        }
        // The teacher as the trainer builds it: float weights for fp32, frozen in bf16 for bf16 (the
        // float copy is freed, and the buffer cache trimmed, so the RSS below is the run's own).
        std::unique_ptr<nn::DenseLlama<float>> dense_teacher;
        std::unique_ptr<infer::FrozenLlama> frozen_teacher;
        {
            Rng teacher_rng(1);
            dense_teacher = std::make_unique<nn::DenseLlama<float>>(config, teacher_rng);
            if (*precision == Precision::BF16) {
                frozen_teacher = std::make_unique<infer::FrozenLlama>(*dense_teacher);
                dense_teacher.reset();
                trim_buffer_cache();
            }
        }
        const train::Teacher<float> teacher =
            frozen_teacher ? train::frozen_teacher(*frozen_teacher) : train::llama_teacher<float>(*dense_teacher);
        for (const auto& [B, T] : shapes) {
            Tensor<int32_t> windows({B, T + 1});
            for (auto& v : windows) v = int32_t(rng.uniform_int(uint64_t(config.vocab_size)));
            const auto [inputs, labels] = data::split_inputs_labels(windows);
            const double tokens = double(B * T);
            const double attention_flops = double(config.num_hidden_layers) * double(B) * 2.0 * double(T) * double(T) *
                                           double(config.hidden_size);  // per model forward (causal: half of 4 T^2 C)
            for (const std::string& loss_s : bench::split_list(loss_list)) {
                const auto loss = train::parse_loss(loss_s);
                if (!loss) {
                    std::fprintf(stderr, "llama_bench: unknown loss %s\n", loss_s.c_str());
                    return 2;
                }
                const bool with_teacher = *loss != train::Loss::CE;
                const double flops = 6.0 * double(matmul_params) * tokens + 3.5 * attention_flops +
                                     (with_teacher ? 2.0 * double(matmul_params) * tokens + attention_flops : 0.0);
                for (const std::string& th : bench::split_list(threads_list)) {
                    const int threads = std::stoi(th);
                    set_num_threads(threads);
                    // The GEMM peak of this run, in this precision: the step's largest GEMM shape, raw.
                    const int64_t M = B * T, K = config.hidden_size, N = config.vocab_size;
                    double peak_gflops = 0;
                    {
                        auto A = Tensor<float>::randn({M, K}, rng), Bm = Tensor<float>::randn({N, K}, rng);
                        Tensor<float> C({M, N});
                        PrecisionScope scope(*precision);
                        const double s = bench::best_seconds(
                            [&] {
                                kernels::gemm<float>(false, true, M, N, K, 1.f, A.data(), K, Bm.data(), K, 0.f,
                                                     C.data(), N);
                            },
                            3);
                        peak_gflops = 2.0 * double(M) * double(K) * double(N) / s * 1e-9;
                    }
                    train::StepOptions so;
                    so.loss = *loss;
                    so.precision = *precision;
                    auto step = [&] {
                        const double value =
                            train::distill_step<float>(student, with_teacher ? &teacher : nullptr, inputs, labels, so);
                        train::detail::profile_phase("optimizer (norm + AdamW)");
                        optimizer.step(3e-4, optim::clip_factor(optim::grad_norm(params), 1.0));
                        student.clear_grad();  // as the trainer does: gradients freed between steps
                        return value;
                    };
                    trim_buffer_cache();  // blocks cached by the previous line are not this line's
                    reset_peak_rss();
                    reset_peak_tensor_bytes();
                    step();  // warm-up: allocates gradients and moments, fills the buffer cache
                    double best = 1e30, loss_value = 0;
                    std::vector<std::pair<std::string, double>> phases;
                    for (int s = 0; s < std::max(steps, 1); ++s) {
                        Profiler prof;
                        const auto t0 = std::chrono::steady_clock::now();
                        loss_value = step();
                        const double seconds =
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                        prof.stop();
                        if (seconds < best) {
                            best = seconds;
                            phases = prof.phases();
                        }
                        if (profile && s == 0)
                            std::fprintf(stderr, "%s, loss %s, %d threads\n%s", precision_s.c_str(), loss_s.c_str(),
                                         threads, prof.report().c_str());
                    }
                    std::string phase_json;
                    for (auto& [name, sec] : phases) {
                        char buf[96];
                        std::snprintf(buf, sizeof buf, "%s\"%s\":%.3f", phase_json.empty() ? "" : ",", name.c_str(),
                                      sec);
                        phase_json += buf;
                    }
                    std::printf(
                        "{\"bench\":\"train_step\",\"preset\":\"%s\",\"precision\":\"%s\",\"bf16_kernel\":\"%s\","
                        "\"loss\":\"%s\","
                        "\"backend\":\"%s\",\"B\":%ld,\"T\":%ld,\"threads\":%d,\"step_seconds\":%.3f,\"tokens_per_s\":%"
                        ".1f,"
                        "\"phase_seconds\":{%s},\"gflops\":%.1f,\"gemm_peak_gflops\":%.1f,\"fraction_of_gemm_peak\":%."
                        "3f,"
                        "\"peak_rss_mib\":%.0f,\"peak_tensor_mib\":%.0f,\"loss_value\":%.4f}\n",
                        preset.c_str(), precision_s.c_str(), kernels::bf16_kernel_name(kernels::bf16_gemm_kernel()),
                        loss_s.c_str(), bench::gemm_backend(), long(B), long(T), threads, best, tokens / best,
                        phase_json.c_str(), flops / best * 1e-9, peak_gflops, flops / best * 1e-9 / peak_gflops,
                        bench::peak_rss_mib(), double(peak_tensor_bytes()) / 1048576.0, loss_value);
                    std::fflush(stdout);
                }
            }
        }
    }
    return 0;
}
