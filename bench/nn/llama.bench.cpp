// The FBI-130M distillation step: teacher forward (no grad) + student forward + AD loss + student
// backward + gradient clipping + AdamW update, B=4, T=256 (--no-optimizer leaves the last two out). JSON lines with tokens/s on 1 and 2 threads,
// peak RSS, and achieved GFLOP/s as a fraction of the fp32 GEMM peak measured in the same run
// ([1024x768]x[768x32000], the largest GEMM of the step).
//   usage: llama_bench [--preset 130M] [--batch 4] [--seq 256] [--steps 3] [--no-optimizer]
#include <cstdio>
#include <cstring>
#include <string>

#include "bench_util.hpp"

using namespace bitgrad;

int main(int argc, char** argv) {
    std::string preset = "130M";
    int64_t B = 4, T = 256;
    int steps = 3;
    bool with_optimizer = true, profile = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--no-optimizer")) with_optimizer = false;
        if (!std::strcmp(argv[i], "--profile")) profile = true;
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--preset")) preset = argv[i + 1];
        else if (!std::strcmp(argv[i], "--batch")) B = std::stoll(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--seq")) T = std::stoll(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--steps")) steps = std::stoi(argv[i + 1]);
    }
    const nn::LlamaConfig config = nn::LlamaConfig::preset(preset);
    Rng rng(0);
    nn::FbiLlama<float> student(config, rng);
    nn::DenseLlama<float> teacher(config, rng);
    optim::AdamW<float> optimizer(optim::param_groups(student, 0.1), {});
    const auto params = student.parameters();
    Tensor<int32_t> ids({B, T});
    for (auto& v : ids) v = int32_t(rng.uniform_int(uint64_t(config.vocab_size)));

    // Matmul parameters per token: every linear layer of one model (attention flops not counted).
    int64_t matmul_params = config.hidden_size * config.vocab_size;
    for (auto& p : student.named_parameters())
        if (p.kind == nn::ParamKind::Binary) matmul_params += p.var.numel();

    for (int threads : {1, 2}) {
        set_num_threads(threads);
        // Peak baseline: the step's largest GEMM shape, raw.
        const int64_t M = B * T, K = config.hidden_size, N = config.vocab_size;
        auto A = Tensor<float>::randn({M, K}, rng), Bm = Tensor<float>::randn({K, N}, rng);
        Tensor<float> C({M, N});
        const double gemm_s = bench::best_seconds([&] {
            kernels::gemm<float>(false, false, M, N, K, 1.f, A.data(), K, Bm.data(), N, 0.f, C.data(), N);
        }, 3);
        const double peak_gflops = 2.0 * M * K * N / gemm_s * 1e-9;
        A = Bm = C = Tensor<float>();

        double teacher_s = 0, step_s = 0;
        float loss_value = 0;
        auto step = [&] {
            auto t0 = std::chrono::steady_clock::now();
            Tensor<float> teacher_logits;
            {
                NoGrad no_grad;
                teacher_logits = teacher.forward(ids).value().reshape({B * T, config.vocab_size});
            }
            auto t1 = std::chrono::steady_clock::now();
            student.zero_grad();
            Tape tape;
            auto logits = reshape(student.forward(ids), Shape{B * T, config.vocab_size});
            auto loss = soft_cross_entropy(logits, teacher_logits);
            tape.backward(loss);
            loss_value = loss.item();
            if (with_optimizer) {
                optim::clip_grad_norm(params, 1.0);
                optimizer.step(3e-4);
            }
            auto t2 = std::chrono::steady_clock::now();
            return std::pair{std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t2 - t0).count()};
        };
        step();  // warm-up: allocates gradients, fills the buffer cache
        step_s = 1e30;
        for (int s = 0; s < steps; ++s) {
            auto [t, total] = step();
            if (total < step_s) { step_s = total; teacher_s = t; }
        }
        if (profile) {
            Profiler prof;
            prof.phase("step");
            step();
            std::fprintf(stderr, "threads %d\n%s", threads, prof.report().c_str());
        }
        const double tokens = double(B * T);
        const double flops = 8.0 * double(matmul_params) * tokens;  // student 6N + teacher 2N
        std::printf("{\"bench\":\"%s\",\"preset\":\"%s\",\"backend\":\"%s\",\"B\":%ld,\"T\":%ld,"
                    "\"threads\":%d,\"step_seconds\":%.3f,\"teacher_forward_seconds\":%.3f,\"tokens_per_s\":%.1f,"
                    "\"teacher_forward_tokens_per_s\":%.1f,\"student_fwd_bwd_tokens_per_s\":%.1f,\"gflops\":%.1f,"
                    "\"gemm_peak_gflops\":%.1f,\"fraction_of_gemm_peak\":%.3f,\"peak_rss_mib\":%.0f,\"loss\":%.4f}\n",
                    with_optimizer ? "distill_step" : "distill_step_no_optimizer", preset.c_str(), bench::gemm_backend(), long(B), long(T), threads, step_s, teacher_s,
                    tokens / step_s, tokens / teacher_s, tokens / (step_s - teacher_s), flops / step_s * 1e-9,
                    peak_gflops, flops / step_s * 1e-9 / peak_gflops, bench::peak_rss_mib(), double(loss_value));
        std::fflush(stdout);
    }
    return 0;
}
