#pragma once
// How a linear layer of an inference model is stored. The decoder (infer/decoder.hpp) is generic
// over it: a new storage format is a new type here, never a new model. Each type answers
//   out(), in()                       the shape of W [out, in]
//   bytes()                           the bytes of weights a forward reads
//   forward(x, rows, y, accumulate)   y [rows, out] = x [rows, in] W^T  (+ y when accumulate)
//   from_weights(W, alpha, beta)      made from a trained layer's tensors: W [out, in] and, for an
//                                     FBI-Linear, alpha and beta [in] (nullptr for a dense layer)
//   random(out, in, rng)              random weights of a trained layer's magnitude (benchmarks)
//   holds_dense, holds_fbi            which kind of trained layer it can store
//   default_tables, bf16_products     the token tables that go with it, and whether the lm_head's
//                                     product over many rows runs in bf16 as the layers' do
//   kv_format()                       what the model's KV cache holds (infer/kv_cache.hpp)
//
//   FloatLinear      W in float. A dense layer as it is; an FBI layer as W_hat = alpha * sign(W) + beta
//                    (kernels::fbi_materialize: the training model's numbers)
//   Bf16Linear       W in bf16, products in kernels::gemm_bf16: a frozen full-precision teacher at half
//                    the bytes (an FBI layer is refused: pack it instead)
//   PackedFbiLinear  an FBI layer as sign bits and fp16 alpha, beta, computing the folded identity
//                      y = S (alpha * x) + (beta . x),   S = sign(W) in {+1, -1}
//                    with int8 activations (the default: rounded per token) or float ones under
//                    kernels::SignActivationsScope (kernels/sign_matmul_q8.hpp, kernels/sign_matmul.hpp).
//                    With int8 activations a decode step (one row) runs the table look-up kernel
//                    (kernels/sign_lut.hpp: the same integers, a third of the instructions) on a copy
//                    of the signs in its layout, made on the first such step: float-activation
//                    users do not pay its memory (as many bytes again as the sign bits). With
//                    int8 activations the model's KV cache holds fp16 (kv_format()).
#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "bitgrad/core/bf16.hpp"
#include "bitgrad/core/error.hpp"
#include "bitgrad/core/fp16.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/rng.hpp"
#include "bitgrad/core/tensor.hpp"
#include "bitgrad/infer/kv_cache.hpp"
#include "bitgrad/infer/token_table.hpp"
#include "bitgrad/kernels/fbi.hpp"
#include "bitgrad/kernels/gemm.hpp"
#include "bitgrad/kernels/gemm_bf16.hpp"
#include "bitgrad/kernels/sign_lut.hpp"
#include "bitgrad/kernels/sign_matmul.hpp"
#include "bitgrad/kernels/sign_matmul_q8.hpp"

namespace bitgrad::infer {

// Latent weights W [out, in] ~ N(0, 0.02), alpha [in] ~ |N(0, 0.02)|, beta [in] ~ N(0, 0.002).
inline std::tuple<Tensor<float>, Tensor<float>, Tensor<float>> random_fbi_weights(int64_t out, int64_t in, Rng& rng) {
    Tensor<float> W = Tensor<float>::randn({out, in}, rng, 0.02), a({in}), b({in});
    for (int64_t j = 0; j < in; ++j) {
        a[j] = float(std::abs(rng.normal()) * 0.02);
        b[j] = float(rng.normal() * 0.002);
    }
    return {std::move(W), std::move(a), std::move(b)};
}

struct FloatLinear {
    static constexpr TableFormat default_tables = TableFormat::Float;
    static constexpr bool bf16_products = false;  // products follow the thread's matmul precision
    static KvFormat kv_format() { return KvFormat::Float; }
    static constexpr bool holds_dense = true, holds_fbi = true;
    Tensor<float> weight;  // [out, in]: W, or W_hat of an FBI layer

    static FloatLinear from_weights(const Tensor<float>& W, const Tensor<float>* alpha, const Tensor<float>* beta) {
        if (!alpha) return {W.clone()};
        FloatLinear l{Tensor<float>(W.shape())};
        kernels::fbi_materialize(W.data(), alpha->data(), beta->data(), l.weight.data(), W.dim(0), W.dim(1));
        return l;
    }
    // The dense baseline of a packed layer: W_hat of random FBI weights, alpha and beta rounded to
    // fp16 as packing rounds them (the same numbers, only the storage differs).
    static FloatLinear random(int64_t out, int64_t in, Rng& rng) {
        auto [W, a, b] = random_fbi_weights(out, in, rng);
        for (int64_t j = 0; j < in; ++j) a[j] = round_to_fp16(a[j]), b[j] = round_to_fp16(b[j]);
        return from_weights(W, &a, &b);
    }
    int64_t out() const { return weight.dim(0); }
    int64_t in() const { return weight.dim(1); }
    int64_t bytes() const { return 4 * weight.numel(); }
    void forward(const float* x, int64_t rows, float* y, bool accumulate) const {
        kernels::gemm<float>(false, true, rows, out(), in(), 1.f, x, in(), weight.data(), in(), accumulate ? 1.f : 0.f,
                             y, out());
    }
};

struct Bf16Linear {
    static constexpr TableFormat default_tables = TableFormat::Bf16;
    static constexpr bool bf16_products = true;  // the lm_head's product in bf16 too
    static KvFormat kv_format() { return KvFormat::Float; }
    static constexpr bool holds_dense = true, holds_fbi = false;
    Tensor<bf16> weight;  // [out, in]

    static Bf16Linear from_weights(const Tensor<float>& W, const Tensor<float>* alpha, const Tensor<float>*) {
        BITGRAD_CHECK(!alpha, "Bf16Linear holds a full-precision layer; a binarized one is packed (PackedFbiLinear)");
        Bf16Linear l{Tensor<bf16>(W.shape())};
        const float* src = W.data();
        bf16* dst = l.weight.data();
        parallel_chunks(W.numel(), [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) dst[i] = to_bf16(src[i]);
        });
        return l;
    }
    static Bf16Linear random(int64_t out, int64_t in, Rng& rng) {
        return from_weights(Tensor<float>::randn({out, in}, rng, 0.02), nullptr, nullptr);
    }
    int64_t out() const { return weight.dim(0); }
    int64_t in() const { return weight.dim(1); }
    int64_t bytes() const { return 2 * weight.numel(); }
    void forward(const float* x, int64_t rows, float* y, bool accumulate) const {
        kernels::gemm_bf16(rows, out(), in(), 1.f, kernels::Bf16Operand::f32(x, in()),
                           kernels::Bf16Operand::bf16(weight.data(), in(), /*trans=*/true), accumulate ? 1.f : 0.f, y,
                           out());
    }
};

struct PackedFbiLinear {
    // Int8 tables go with the default int8 activations: the pair that decodes fastest for the
    // least measured cost (docs/inference.md).
    static constexpr TableFormat default_tables = TableFormat::Int8;
    static constexpr bool bf16_products = false;
    static constexpr bool holds_dense = false, holds_fbi = true;
    // The fast path rounds what it keeps as it rounds what it multiplies: with int8 activations the
    // cache holds fp16 (half the bytes a decode step reads there); with float ones, floats.
    static KvFormat kv_format() {
        return kernels::sign_activations() == kernels::SignActivations::Int8 ? KvFormat::Fp16 : KvFormat::Float;
    }
    kernels::PackedSigns signs;
    Tensor<float> alpha, beta;  // [in], values exactly representable in fp16

    PackedFbiLinear() = default;
    PackedFbiLinear(kernels::PackedSigns s, Tensor<float> a, Tensor<float> b)
        : signs(std::move(s)), alpha(std::move(a)), beta(std::move(b)) {
        BITGRAD_CHECK(alpha.numel() == signs.in && beta.numel() == signs.in,
                      "PackedFbiLinear: alpha has " << alpha.numel() << " and beta " << beta.numel()
                                                    << " values, expected " << signs.in);
    }
    // Signs packed, alpha and beta rounded to fp16.
    static PackedFbiLinear from_weights(const Tensor<float>& W, const Tensor<float>* alpha, const Tensor<float>* beta) {
        BITGRAD_CHECK(alpha && beta, "PackedFbiLinear packs a binarized (FBI-Linear) layer: it needs wscale and wbias");
        const int64_t in = W.dim(1);
        Tensor<float> a({in}), b({in});
        for (int64_t j = 0; j < in; ++j) {
            a[j] = round_to_fp16((*alpha)[j]);
            b[j] = round_to_fp16((*beta)[j]);
        }
        return PackedFbiLinear(kernels::pack_signs(W.data(), W.dim(0), in), std::move(a), std::move(b));
    }
    static PackedFbiLinear random(int64_t out, int64_t in, Rng& rng) {
        auto [W, a, b] = random_fbi_weights(out, in, rng);
        return from_weights(W, &a, &b);
    }
    int64_t out() const { return signs.out; }
    int64_t in() const { return signs.in; }
    int64_t bytes() const { return signs.bytes() + 2 * 2 * in(); }  // bits + fp16 alpha, beta

    void forward(const float* x, int64_t rows, float* y, bool accumulate) const {
        const bool int8 = kernels::sign_activations() == kernels::SignActivations::Int8;
        if (int8 && rows == 1) return decode_int8<1>({this}, x, {y}, accumulate);
        const int64_t n_in = in(), n_out = out();
        Tensor<float> xa({rows, n_in}), xb({rows});
        parallel_for(
            rows, [&](int64_t r) { xb[r] = fold_input(x + r * n_in, xa.data() + r * n_in); }, n_in);
        if (int8) {  // y = d (2 P - sum q) + beta . x, in the order of the float path below
            const kernels::Q8Rows X = kernels::quantize_rows_q8(xa.data(), rows, n_in);
            std::vector<int32_t> P(std::size_t(rows * n_out));
            kernels::sign_matmul_q8_sums(signs, X, P.data());
            return kernels::dequantize_sign_sums(X, P.data(), n_out, y, accumulate, xb.data());
        }
        Tensor<float> s({rows, n_out});
        kernels::sign_matmul(signs, xa.data(), rows, s.data());
        parallel_for(
            rows,
            [&](int64_t r) {
                for (int64_t i = 0; i < n_out; ++i)
                    y[r * n_out + i] = (accumulate ? y[r * n_out + i] : 0.f) + s[r * n_out + i] + xb[r];
            },
            n_out);
    }

    // ys[l] = x W_l^T (rows of x) for N layers that read the same input: q, k and v, or gate and up.
    // A decode step with int8 activations runs their sign products as one call of the table kernel
    // (one fork for all N); otherwise each layer's forward. The same numbers either way.
    template <std::size_t N>
    static void forward_group(const std::array<const PackedFbiLinear*, N>& layers, const float* x, int64_t rows,
                              const std::array<float*, N>& ys) {
        if (kernels::sign_activations() == kernels::SignActivations::Int8 && rows == 1)
            return decode_int8<N>(layers, x, ys, false);
        for (std::size_t l = 0; l < N; ++l) layers[l]->forward(x, rows, ys[l], false);
    }

    // The signs in sign_lut's layout, made once (thread-safe); copies of this layer share them.
    const kernels::LutSigns& decode_layout() const {
        std::call_once(lut_->once, [&] { lut_->signs = kernels::lut_signs(signs); });
        return lut_->signs;
    }

private:
    // xa = alpha .* x, and returns beta . x (one row: negligible next to the product).
    float fold_input(const float* x, float* xa) const {
        const float *a = alpha.data(), *b = beta.data();
        float dot = 0;
        for (int64_t j = 0; j < in(); ++j) {
            xa[j] = x[j] * a[j];
            dot += x[j] * b[j];
        }
        return dot;
    }

    // One activation row through N layers with int8 activations: each layer rounds its own xa
    // (kernels::quantize_rows_q8), then kernels::sign_lut_sums_many computes every layer's integer
    // sums P in one call, and y = d (2 P - sum q) + beta . x as sign_matmul_q8 gives it.
    template <std::size_t N>
    static void decode_int8(const std::array<const PackedFbiLinear*, N>& layers, const float* x,
                            const std::array<float*, N>& ys, bool accumulate) {
        std::array<kernels::Q8Rows, N> X;
        std::array<float, N> xb;
        std::array<std::vector<int32_t>, N> P;
        std::array<kernels::LutProblem, N> problems;
        for (std::size_t l = 0; l < N; ++l) {
            const PackedFbiLinear& layer = *layers[l];
            Tensor<float> xa({layer.in()});
            xb[l] = layer.fold_input(x, xa.data());
            X[l] = kernels::quantize_rows_q8(xa.data(), 1, layer.in());
            P[l].resize(std::size_t(layer.out()));
            problems[l] = {&layer.decode_layout(), X[l].q.data(), P[l].data()};
        }
        kernels::sign_lut_sums_many(problems.data(), int64_t(N));
        for (std::size_t l = 0; l < N; ++l)
            kernels::dequantize_sign_sums(X[l], P[l].data(), layers[l]->out(), ys[l], accumulate, &xb[l]);
    }

    struct LazyLut {
        std::once_flag once;
        kernels::LutSigns signs;
    };
    std::shared_ptr<LazyLut> lut_ = std::make_shared<LazyLut>();
};

}  // namespace bitgrad::infer
