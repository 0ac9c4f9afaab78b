#include "helpers.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

using namespace bitgrad;
using kernels::Bf16Kernel;
using kernels::Bf16Operand;

namespace gemm_bf16_test {
// The kernels this CPU can run, read from the family's list: the emulated one always (it shares
// packing, blocking and tiling with the native kernel, so its agreement with the reference checks
// that logic everywhere), the float fallback, and the AVX512_BF16 kernel where the CPU has it.
std::vector<Bf16Kernel> runnable_kernels() {
    std::vector<Bf16Kernel> k;
    for (const auto& v : kernels::kBf16Variants) {
        if (v.supported())
            k.push_back(v.id);
        else
            MESSAGE("this CPU cannot run the " << std::string(v.name)
                                               << " bf16 kernel (the emulated one shares all its other code)");
    }
    return k;
}

// A matrix of the given stored shape in the source kind (bf16 values kept in a side buffer).
struct Operand {
    Tensor<float> f;
    std::vector<bf16> h;
    Bf16Operand op;
};
Operand make_operand(Bf16Operand::Source src, int64_t rows, int64_t cols, bool trans, Rng& rng) {
    Operand o;
    o.f = Tensor<float>::randn({rows, cols}, rng);
    if (src == Bf16Operand::Source::SignOfF32) o.f[0] = 0.f;  // sign(0) = +1
    if (src == Bf16Operand::Source::BF16) {
        for (float v : o.f) o.h.push_back(to_bf16(v));
        o.op = Bf16Operand::bf16(o.h.data(), cols, trans);
    } else {
        o.op = {src, o.f.data(), cols, trans};
    }
    return o;
}
}  // namespace gemm_bf16_test
using namespace gemm_bf16_test;

TEST_CASE("to_bf16 rounds to nearest even and keeps NaN and infinities") {
    CHECK(to_float(to_bf16(1.f)) == 1.f);
    CHECK(to_bf16(-1.f).bits == kBf16MinusOne.bits);
    CHECK(to_bf16(1.f).bits == kBf16One.bits);
    // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
    CHECK(to_float(to_bf16(1.f + 0x1p-8f)) == 1.f);
    CHECK(to_float(to_bf16(1.f + 3 * 0x1p-8f)) == 1.f + 0x1p-6f);         // halfway, odd below: up
    CHECK(to_float(to_bf16(1.f + 0x1p-8f + 0x1p-20f)) == 1.f + 0x1p-7f);  // above halfway: up
    CHECK(std::isnan(to_float(to_bf16(std::numeric_limits<float>::quiet_NaN()))));
    CHECK(std::isinf(to_float(to_bf16(std::numeric_limits<float>::infinity()))));
    // bf16 keeps 8 significant bits: the relative rounding error is at most 2^-8 (the unit roundoff).
    Rng rng(1);
    for (int i = 0; i < 1000; ++i) {
        const float v = float(rng.normal() * 100);
        CHECK(std::abs(to_float(to_bf16(v)) - v) <= std::abs(v) * 0x1p-8f);
    }
}

TEST_CASE("gemm_bf16 equals its reference for every kernel - source kind - transpose - odd and blocked sizes") {
    Rng rng(2);
    using S = Bf16Operand::Source;
    struct Dims {
        int64_t M, N, K;
    };
    // Odd sizes, and sizes past the blocking: M > MC (96), K > KC (256, and odd), N > NR and > NC (1024).
    const std::vector<Dims> dims = {{1, 1, 1},      {7, 33, 13},  {13, 31, 2},  {97, 65, 257},
                                    {200, 40, 600}, {3, 1030, 5}, {12, 32, 256}};
    for (Bf16Kernel kernel : runnable_kernels())
        for (auto d : dims)
            for (S sa : {S::F32, S::BF16})
                for (S sb : {S::F32, S::BF16, S::SignOfF32})
                    for (int ta = 0; ta < 2; ++ta)
                        for (int tb = 0; tb < 2; ++tb) {
                            CAPTURE(kernels::bf16_kernel_name(kernel));
                            CAPTURE(d.M);
                            CAPTURE(d.N);
                            CAPTURE(d.K);
                            CAPTURE(int(sa));
                            CAPTURE(int(sb));
                            CAPTURE(ta);
                            CAPTURE(tb);
                            auto A = make_operand(sa, ta ? d.K : d.M, ta ? d.M : d.K, ta, rng);
                            auto B = make_operand(sb, tb ? d.N : d.K, tb ? d.K : d.N, tb, rng);
                            auto C = Tensor<float>::randn({d.M, d.N}, rng), R = C.clone();
                            const float beta = (ta + tb) % 2 ? 0.5f : 0.f;
                            kernels::gemm_bf16_with(kernel, d.M, d.N, d.K, 1.5f, A.op, B.op, beta, C.data(), d.N);
                            kernels::gemm_bf16_reference(d.M, d.N, d.K, 1.5f, A.op, B.op, beta, R.data(), d.N);
                            // Same rounded operands; only the float accumulation order differs.
                            double worst = 0;
                            for (int64_t i = 0; i < C.numel(); ++i)
                                worst = std::max(worst, std::abs(double(C[i]) - double(R[i])));
                            CHECK(worst < 2e-6 * double(d.K + 8) * 4);
                        }
}

TEST_CASE("gemm_bf16 with beta 0 ignores C's old contents and K = 0 scales C") {
    Rng rng(3);
    auto a = Tensor<float>::randn({5, 3}, rng), b = Tensor<float>::randn({3, 4}, rng);
    for (Bf16Kernel kernel : runnable_kernels()) {
        auto C = Tensor<float>::full({5, 4}, std::numeric_limits<float>::quiet_NaN());
        auto R = Tensor<float>::zeros({5, 4});
        kernels::gemm_bf16_with(kernel, 5, 4, 3, 1.f, Bf16Operand::f32(a.data(), 3), Bf16Operand::f32(b.data(), 4), 0.f,
                                C.data(), 4);
        kernels::gemm_bf16_reference(5, 4, 3, 1.f, Bf16Operand::f32(a.data(), 3), Bf16Operand::f32(b.data(), 4), 0.f,
                                     R.data(), 4);
        CHECK(max_abs_diff(C, R) < 1e-5);
        auto D = Tensor<float>::full({5, 4}, 2.f);
        kernels::gemm_bf16_with(kernel, 5, 4, 0, 1.f, Bf16Operand::f32(a.data(), 3), Bf16Operand::f32(b.data(), 4),
                                0.5f, D.data(), 4);
        CHECK(D[7] == 1.f);
    }
}

TEST_CASE("kernels::gemm follows the thread's matmul precision") {
    Rng rng(4);
    auto a = Tensor<float>::randn({9, 70}, rng), b = Tensor<float>::randn({70, 11}, rng);
    Tensor<float> fp({9, 11}), mixed({9, 11}), ref_fp({9, 11}), ref_bf({9, 11});
    kernels::gemm<float>(false, false, 9, 11, 70, 1.f, a.data(), 70, b.data(), 11, 0.f, fp.data(), 11);
    {
        PrecisionScope bf16_scope(Precision::BF16);
        CHECK(matmul_precision() == Precision::BF16);
        kernels::gemm<float>(false, false, 9, 11, 70, 1.f, a.data(), 70, b.data(), 11, 0.f, mixed.data(), 11);
    }
    CHECK(matmul_precision() == Precision::FP32);
    kernels::gemm_reference<float>(false, false, 9, 11, 70, 1.f, a.data(), 70, b.data(), 11, 0.f, ref_fp.data(), 11);
    kernels::gemm_bf16_reference(9, 11, 70, 1.f, Bf16Operand::f32(a.data(), 70), Bf16Operand::f32(b.data(), 11), 0.f,
                                 ref_bf.data(), 11);
    CHECK(max_abs_diff(fp, ref_fp) < 1e-4);
    CHECK(max_abs_diff(mixed, ref_bf) < 1e-4);
    CHECK(max_abs_diff(fp, mixed) > 1e-3);  // the two precisions really differ
}
