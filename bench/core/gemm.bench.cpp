// fp32 GEMM throughput on the FBI-130M shapes, the tape overhead of linear(), and fused attention.
// Prints JSON lines. Built twice: gemm_bench (OpenBLAS-backed when found) and gemm_bench_eigen.
//   linear rows: ratio = time(3 raw gemm calls) / time(linear forward + backward on a tape), so
//   1.0 means the tape costs nothing; the baseline is the same build's raw kernels::gemm.
#include <cstdio>
#include <string>

#include "bench_util.hpp"

using namespace bitgrad;

struct GemmShape {
    int64_t M, K, N;
};

static void bench_gemm(const GemmShape& s, int threads, Rng& rng) {
    set_num_threads(threads);
    auto A = Tensor<float>::randn({s.M, s.K}, rng), B = Tensor<float>::randn({s.K, s.N}, rng);
    Tensor<float> C({s.M, s.N});
    const double secs = bench::best_seconds(
        [&] {
            kernels::gemm<float>(false, false, s.M, s.N, s.K, 1.f, A.data(), s.K, B.data(), s.N, 0.f, C.data(), s.N);
        },
        5);
    std::printf(
        "{\"bench\":\"gemm_fp32\",\"backend\":\"%s\",\"shape\":\"[%ldx%ld]x[%ldx%ld]\",\"threads\":%d,"
        "\"seconds\":%.5f,\"gflops\":%.1f}\n",
        bench::gemm_backend(), long(s.M), long(s.K), long(s.K), long(s.N), threads, secs,
        2.0 * s.M * s.K * s.N / secs * 1e-9);
    std::fflush(stdout);
}

// linear(x, W) forward + backward (y = x W^T, dx = g W, dW = g^T x) vs the same three raw GEMMs.
static void bench_linear(const GemmShape& s, int threads, Rng& rng) {
    set_num_threads(threads);
    const int64_t rows = s.M, in = s.K, out = s.N;
    Var<float> x(Tensor<float>::randn({rows, in}, rng), true), W(Tensor<float>::randn({out, in}, rng, 0.02), true);
    auto g = Tensor<float>::randn({rows, out}, rng);
    Tensor<float> y({rows, out}), dx = Tensor<float>::zeros({rows, in}), dW = Tensor<float>::zeros({out, in});
    auto [raw, taped] = bench::best_seconds_interleaved(
        [&] {
            kernels::gemm<float>(false, true, rows, out, in, 1.f, x.value().data(), in, W.value().data(), in, 0.f,
                                 y.data(), out);
            kernels::gemm<float>(false, false, rows, in, out, 1.f, g.data(), out, W.value().data(), in, 1.f, dx.data(),
                                 in);
            kernels::gemm<float>(true, false, out, in, rows, 1.f, g.data(), out, x.value().data(), in, 1.f, dW.data(),
                                 in);
        },
        [&] {
            Tape tape;
            backward(linear(x, W), g);
        },
        5);
    std::printf(
        "{\"bench\":\"linear_fwd_bwd\",\"backend\":\"%s\",\"shape\":\"x[%ldx%ld] W[%ldx%ld]\",\"threads\":%d,"
        "\"raw_gemm_seconds\":%.5f,\"tape_seconds\":%.5f,\"ratio_vs_raw\":%.3f,\"gflops\":%.1f}\n",
        bench::gemm_backend(), long(rows), long(in), long(out), long(in), threads, raw, taped, raw / taped,
        6.0 * rows * in * out / taped * 1e-9);
    std::fflush(stdout);
}

static void bench_attention(int64_t B, int64_t T, int threads, Rng& rng) {
    set_num_threads(threads);
    const int64_t H = 12, D = 64;
    Var<float> q(Tensor<float>::randn({B, T, H, D}, rng), true), k(Tensor<float>::randn({B, T, H, D}, rng), true),
        v(Tensor<float>::randn({B, T, H, D}, rng), true);
    auto g = Tensor<float>::randn({B, T, H, D}, rng);
    const double secs = bench::best_seconds(
        [&] {
            Tape tape;
            backward(attention(q, k, v), g);
        },
        2);
    // Causal: about half of the 4 (fwd) + 10 (bwd incl. recompute) T^2 D flops per head are done.
    const double flops = B * H * 14.0 * T * T * D * 0.5;
    std::printf(
        "{\"bench\":\"attention_fwd_bwd\",\"backend\":\"%s\",\"B\":%ld,\"T\":%ld,\"heads\":%ld,\"head_dim\":%ld,"
        "\"threads\":%d,\"seconds\":%.5f,\"tokens_per_s\":%.0f,\"gflops\":%.1f}\n",
        bench::gemm_backend(), long(B), long(T), long(H), long(D), threads, secs, B * T / secs, flops / secs * 1e-9);
    std::fflush(stdout);
}

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
    Rng rng(0);
    const GemmShape shapes[] = {{1024, 768, 2048}, {1024, 2048, 768}, {1024, 768, 32000}};
    for (int threads : {1, 2}) {
        for (const auto& s : shapes) {
            if (quick && s.N == 32000) continue;
            bench_gemm(s, threads, rng);
        }
        for (const auto& s : shapes) {
            if (quick && s.N == 32000) continue;
            bench_linear(s, threads, rng);
        }
        bench_attention(4, 256, threads, rng);
        if (!quick) bench_attention(1, 2048, threads, rng);
    }
    return 0;
}
