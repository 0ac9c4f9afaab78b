// sign_matmul (1-bit packed signs, kernels/sign_matmul.hpp) against the float GEMM on the same +-1
// matrix (kernels::gemm, OpenBLAS-backed when found), on the FBI-130M and 7B linear shapes [out x in].
// Prints JSON lines:
//   sign_gemv     rows = 1 (decode). "hot": the same weights every call (bits of every shape here fit
//                 in L3, the float matrices of the 7B shapes do not); "cold": calls rotate over copies
//                 of the weights totalling >= 96 MiB, so each call reads its weights from DRAM, as a
//                 whole model's layers would. bits_gbps = packed bytes read / time, dense_gbps = float
//                 bytes / time; speedup = dense time / kernel time.
//                 "kernel": "int8_<variant>" rows time sign_matmul_q8 (activations rounded to int8,
//                 kernels/sign_matmul_q8.hpp) with every variant of its list this CPU runs;
//                 "lut_<variant>" rows time sign_matmul_lut (the same int8 rounding and integers by
//                 table look-ups, kernels/sign_lut.hpp: the tables are built in every call) on the
//                 signs repacked by lut_signs, with every variant of kSignLutVariants.
//   sign_prefill  rows = 128: gflops = 2 * rows * out * in / time (multiply-adds of the equivalent
//                 float GEMM), against the float GEMM of the same shape; "int8_<variant>" rows time
//                 sign_matmul_q8 (the rounding of the activations included).
// Usage: sign_matmul_bench [--quick]   (--quick: the 130M shapes only)
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "bitgrad/kernels/sign_lut.hpp"
#include "bitgrad/kernels/sign_matmul.hpp"
#include "bitgrad/kernels/sign_matmul_q8.hpp"

using namespace bitgrad;
using kernels::PackedSigns;
using kernels::SignKernel;

struct LinearShape {
    int64_t out, in;
};

// Seconds per call: calls batched so one timing lasts >= 2 ms, best of 5 batches.
template <class F>
static double seconds_per_call(F&& fn) {
    fn();
    int64_t n = 1;
    auto time_n = [&](int64_t calls) {
        auto t0 = std::chrono::steady_clock::now();
        for (int64_t c = 0; c < calls; ++c) fn();
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    while (time_n(n) < 2e-3) n *= 2;
    double best = 1e30;
    for (int rep = 0; rep < 5; ++rep) best = std::min(best, time_n(n) / double(n));
    return best;
}

// Every variant of the family's list this CPU runs (a new variant is timed without a change here).
static std::vector<SignKernel> kernels_here() {
    std::vector<SignKernel> ks;
    for (const auto& v : kernels::kSignVariants)
        if (v.supported()) ks.push_back(v.id);
    return ks;
}

static void bench_gemv(const LinearShape& s, int threads, bool cold, Rng& rng) {
    set_num_threads(threads);
    const int64_t out = s.out, in = s.in;
    const auto W = Tensor<float>::randn({out, in}, rng);
    const PackedSigns P = kernels::pack_signs(W.data(), out, in);
    const double bit_bytes = double(P.bytes()), dense_bytes = double(out) * double(in) * 4;
    // Copies to rotate over (cold), each its own storage.
    const double target = 96.0 * 1024 * 1024;
    const int64_t n_bits = cold ? std::max<int64_t>(1, int64_t(target / bit_bytes) + 1) : 1;
    const int64_t n_dense = cold ? std::max<int64_t>(1, int64_t(target / dense_bytes) + 1) : 1;
    std::vector<PackedSigns> Ps;
    for (int64_t c = 0; c < n_bits; ++c) Ps.emplace_back(out, in, P.bits.clone());
    std::vector<Tensor<float>> Ss;
    for (int64_t c = 0; c < n_dense; ++c) {
        Ss.emplace_back(Shape{out, in});
        kernels::unpack_signs(P, Ss.back().data());
    }
    const auto x = Tensor<float>::randn({1, in}, rng);
    Tensor<float> y({1, out});
    int64_t next = 0;
    const double dense = seconds_per_call([&] {
        const float* S = Ss[std::size_t(next++ % n_dense)].data();
        kernels::gemm<float>(false, true, 1, out, in, 1.f, x.data(), in, S, in, 0.f, y.data(), out);
    });
    const char* cache = cold ? "cold" : "hot";
    std::printf(
        "{\"bench\":\"sign_gemv\",\"shape\":\"%ldx%ld\",\"threads\":%d,\"cache\":\"%s\",\"kernel\":\"dense_fp32_%s\","
        "\"us\":%.2f,\"gbps\":%.2f}\n",
        long(out), long(in), threads, cache, bench::gemm_backend(), dense * 1e6, dense_bytes / dense * 1e-9);
    for (SignKernel k : kernels_here()) {
        if (k == SignKernel::Reference && out * in > 4096 * 4096) continue;  // scalar, tens of ms: nothing to learn
        next = 0;
        const double t =
            seconds_per_call([&] { kernels::sign_matmul(Ps[std::size_t(next++ % n_bits)], x.data(), 1, y.data(), k); });
        std::printf(
            "{\"bench\":\"sign_gemv\",\"shape\":\"%ldx%ld\",\"threads\":%d,\"cache\":\"%s\",\"kernel\":\"%s\","
            "\"us\":%.2f,\"bits_gbps\":%.2f,\"dense_us\":%.2f,\"speedup_vs_dense\":%.2f}\n",
            long(out), long(in), threads, cache, kernels::sign_kernel_name(k), t * 1e6, bit_bytes / t * 1e-9,
            dense * 1e6, dense / t);
    }
    for (const auto& v : kernels::kSignQ8Variants) {
        if (!v.supported() || (v.id == SignKernel::Reference && out * in > 4096 * 4096)) continue;
        next = 0;
        const double t = seconds_per_call(
            [&] { kernels::sign_matmul_q8(Ps[std::size_t(next++ % n_bits)], x.data(), 1, y.data(), v.id); });
        std::printf(
            "{\"bench\":\"sign_gemv\",\"shape\":\"%ldx%ld\",\"threads\":%d,\"cache\":\"%s\",\"kernel\":\"int8_%s\","
            "\"us\":%.2f,\"bits_gbps\":%.2f,\"dense_us\":%.2f,\"speedup_vs_dense\":%.2f}\n",
            long(out), long(in), threads, cache, v.name, t * 1e6, bit_bytes / t * 1e-9, dense * 1e6, dense / t);
    }
    std::vector<kernels::LutSigns> Ls;  // the same number of copies as Ps (the same bytes, regrouped)
    for (const PackedSigns& p : Ps) Ls.push_back(kernels::lut_signs(p));
    for (const auto& v : kernels::kSignLutVariants) {
        if (!v.supported() || (v.id == kernels::SignLutKernel::Generic && out * in > 4096 * 4096)) continue;
        next = 0;
        const double t = seconds_per_call(
            [&] { kernels::sign_matmul_lut(Ls[std::size_t(next++ % n_bits)], x.data(), 1, y.data(), v.id); });
        std::printf(
            "{\"bench\":\"sign_gemv\",\"shape\":\"%ldx%ld\",\"threads\":%d,\"cache\":\"%s\",\"kernel\":\"lut_%s\","
            "\"us\":%.2f,\"bits_gbps\":%.2f,\"dense_us\":%.2f,\"speedup_vs_dense\":%.2f}\n",
            long(out), long(in), threads, cache, v.name, t * 1e6, bit_bytes / t * 1e-9, dense * 1e6, dense / t);
    }
    std::fflush(stdout);
}

static void bench_prefill(const LinearShape& s, int threads, Rng& rng) {
    set_num_threads(threads);
    const int64_t out = s.out, in = s.in, rows = 128;
    const auto W = Tensor<float>::randn({out, in}, rng);
    const PackedSigns P = kernels::pack_signs(W.data(), out, in);
    Tensor<float> S({out, in});
    kernels::unpack_signs(P, S.data());
    const auto x = Tensor<float>::randn({rows, in}, rng);
    Tensor<float> y({rows, out});
    const double flops = 2.0 * double(rows) * double(out) * double(in);
    const double dense = seconds_per_call(
        [&] { kernels::gemm<float>(false, true, rows, out, in, 1.f, x.data(), in, S.data(), in, 0.f, y.data(), out); });
    std::printf(
        "{\"bench\":\"sign_prefill\",\"shape\":\"%ldx%ld\",\"rows\":%ld,\"threads\":%d,\"kernel\":\"dense_fp32_%s\","
        "\"ms\":%.3f,\"gflops\":%.1f}\n",
        long(out), long(in), long(rows), threads, bench::gemm_backend(), dense * 1e3, flops / dense * 1e-9);
    for (SignKernel k : kernels_here()) {
        if (k == SignKernel::Reference) continue;  // a scalar double loop
        const double t = seconds_per_call([&] { kernels::sign_matmul(P, x.data(), rows, y.data(), k); });
        std::printf(
            "{\"bench\":\"sign_prefill\",\"shape\":\"%ldx%ld\",\"rows\":%ld,\"threads\":%d,\"kernel\":\"%s\","
            "\"ms\":%.3f,\"gflops\":%.1f,\"dense_ms\":%.3f,\"speedup_vs_dense\":%.2f}\n",
            long(out), long(in), long(rows), threads, kernels::sign_kernel_name(k), t * 1e3, flops / t * 1e-9,
            dense * 1e3, dense / t);
    }
    for (const auto& v : kernels::kSignQ8Variants) {  // int8 activations: rounding included
        if (!v.supported() || v.id == SignKernel::Reference) continue;
        const double t = seconds_per_call([&] { kernels::sign_matmul_q8(P, x.data(), rows, y.data(), v.id); });
        std::printf(
            "{\"bench\":\"sign_prefill\",\"shape\":\"%ldx%ld\",\"rows\":%ld,\"threads\":%d,\"kernel\":\"int8_%s\","
            "\"ms\":%.3f,\"gflops\":%.1f,\"dense_ms\":%.3f,\"speedup_vs_dense\":%.2f}\n",
            long(out), long(in), long(rows), threads, v.name, t * 1e3, flops / t * 1e-9, dense * 1e3, dense / t);
    }
    std::fflush(stdout);
}

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
    Rng rng(0);
    const std::vector<LinearShape> shapes = {{768, 768},   {2048, 768},   {768, 2048},
                                             {4096, 4096}, {11008, 4096}, {4096, 11008}};
    for (int threads : {1, 2})
        for (const auto& s : shapes) {
            if (quick && s.out * s.in > 2048 * 768) continue;
            for (bool cold : {false, true}) bench_gemv(s, threads, cold, rng);
            bench_prefill(s, threads, rng);
        }
    return 0;
}
