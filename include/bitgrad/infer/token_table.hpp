#pragma once
// TokenTable: the embedding or the lm_head [V, C] of a model at inference, in one of three formats.
//
//   Float  4 bytes a weight: the checkpoint's exact numbers (evaluating a float model).
//   Bf16   2 bytes a weight; the packed model's default (bf16 keeps float's range, so any trained
//          value fits, and its 8-bit mantissa moves a logit by ~0.4% of its size at most).
//   Int8   1 byte a weight and one float scale per row (kernels::quantize_int8_row: absmax / 127):
//          half the bytes, for the matrix that is most of what a small model reads per decoded
//          token (the 32000 x 768 lm_head at 130M). docs/inference.md measures what it costs in
//          perplexity.
//
// A table gives a row as floats (the embedding lookup) and y = T x (the lm_head at decode).
#include <algorithm>
#include <cmath>
#include <string>

#include "bitgrad/core/bf16.hpp"
#include "bitgrad/core/error.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/tensor.hpp"
#include "bitgrad/kernels/gemm.hpp"
#include "bitgrad/kernels/gemm_bf16.hpp"
#include "bitgrad/kernels/gemm_fp.hpp"
#include "bitgrad/kernels/gemv_bf16.hpp"
#include "bitgrad/kernels/gemv_int8.hpp"

namespace bitgrad::infer {

enum class TableFormat { Float, Bf16, Int8 };

inline const char* table_format_name(TableFormat f) {
    switch (f) {
        case TableFormat::Float: return "float";
        case TableFormat::Bf16: return "bf16";
        case TableFormat::Int8: return "int8";
    }
    return "?";
}

// The formats a packed file stores ("bf16", "int8"; the float tables are for float checkpoints).
inline TableFormat parse_table_format(const std::string& s, const std::string& where) {
    if (s == "bf16") return TableFormat::Bf16;
    if (s == "int8") return TableFormat::Int8;
    BITGRAD_CHECK(false, where << " is \"" << s << "\", expected \"bf16\" or \"int8\"");
    return TableFormat::Bf16;
}

class TokenTable {
public:
    TokenTable() = default;
    // From float weights [V, C], rounded to the format.
    TokenTable(const Tensor<float>& w, TableFormat f) : format_(f), rows_(w.dim(0)), cols_(w.dim(1)) {
        if (f == TableFormat::Float) {
            float_ = w.clone();
            return;
        }
        if (f == TableFormat::Bf16) {
            bf16_ = Tensor<bf16>(w.shape());
            for (int64_t i = 0; i < w.numel(); ++i) bf16_[i] = to_bf16(w[i]);
            return;
        }
        for (int64_t i = 0; i < w.numel(); ++i)  // kernels::quantize_int8_row takes finite values only
            BITGRAD_CHECK(std::isfinite(w[i]), "TokenTable: weight [" << i / cols_ << ", " << i % cols_ << "] is "
                                                                      << w[i] << ", expected a finite value for int8");
        int8_ = Tensor<int8_t>(w.shape());
        scale_ = Tensor<float>({rows_});
        parallel_for(
            rows_,
            [&](int64_t v) {
                scale_[v] = kernels::quantize_int8_row(w.data() + v * cols_, cols_, int8_.data() + v * cols_);
            },
            cols_);
    }
    // Stored values as they are (the packed file's reader).
    explicit TokenTable(Tensor<bf16> w)
        : format_(TableFormat::Bf16), rows_(w.dim(0)), cols_(w.dim(1)), bf16_(std::move(w)) {}
    TokenTable(Tensor<int8_t> q, Tensor<float> scale)
        : format_(TableFormat::Int8), rows_(q.dim(0)), cols_(q.dim(1)), int8_(std::move(q)), scale_(std::move(scale)) {
        BITGRAD_CHECK(scale_.shape() == Shape({rows_}),
                      "TokenTable: " << scale_.numel() << " scales for " << rows_ << " rows");
    }

    TableFormat format() const { return format_; }
    int64_t rows() const { return rows_; }
    int64_t cols() const { return cols_; }
    Shape shape() const { return Shape{rows_, cols_}; }
    const Tensor<bf16>& bf16_values() const { return bf16_; }    // format Bf16
    const Tensor<int8_t>& int8_values() const { return int8_; }  // format Int8
    const Tensor<float>& int8_scales() const { return scale_; }  // format Int8: [rows]
    int64_t bytes() const { return rows_ * bytes_per_row(); }
    int64_t bytes_per_row() const {
        switch (format_) {
            case TableFormat::Float: return 4 * cols_;
            case TableFormat::Bf16: return 2 * cols_;
            case TableFormat::Int8: return cols_ + 4;
        }
        return 0;
    }

    // out [cols] = row v as floats.
    void row(int64_t v, float* out) const {
        if (format_ == TableFormat::Float) {
            std::copy_n(float_.data() + v * cols_, cols_, out);
        } else if (format_ == TableFormat::Bf16) {
            const bf16* r = bf16_.data() + v * cols_;
            for (int64_t j = 0; j < cols_; ++j) out[j] = to_float(r[j]);
        } else {
            const int8_t* r = int8_.data() + v * cols_;
            const float s = scale_[v];
            for (int64_t j = 0; j < cols_; ++j) out[j] = s * float(r[j]);
        }
    }
    // y [rows] = T x, x [cols].
    void gemv(const float* x, float* y) const {
        if (format_ == TableFormat::Float)
            kernels::gemm<float>(false, true, 1, rows_, cols_, 1.f, x, cols_, float_.data(), cols_, 0.f, y, rows_);
        else if (format_ == TableFormat::Bf16)
            kernels::gemv_bf16(bf16_.data(), rows_, cols_, x, y);
        else
            kernels::gemv_int8(int8_.data(), scale_.data(), rows_, cols_, x, y);
    }
    // Y [n, rows] = X [n, cols] T^T: one gemv for n = 1, else blocks of the table widened to float
    // and the float GEMM (the same values; sums in the GEMM's order). For logits at every position.
    // bf16_products: a bf16 table's product in kernels::gemm_bf16 (X rounded to bf16 too), as a
    // bf16 teacher computes every other product.
    void matmul(const float* X, int64_t n, float* Y, bool bf16_products = false) const {
        if (format_ == TableFormat::Bf16 && bf16_products)
            return kernels::gemm_bf16(n, rows_, cols_, 1.f, kernels::Bf16Operand::f32(X, cols_),
                                      kernels::Bf16Operand::bf16(bf16_.data(), cols_, /*trans=*/true), 0.f, Y, rows_);
        if (format_ == TableFormat::Float)
            return kernels::gemm<float>(false, true, n, rows_, cols_, 1.f, X, cols_, float_.data(), cols_, 0.f, Y,
                                        rows_);
        if (n == 1) return gemv(X, Y);
        const int64_t block =
            std::max<int64_t>(1, std::min<int64_t>(rows_, (int64_t(1) << 18) / std::max<int64_t>(cols_, 1)));
        Tensor<float> wide({block, cols_});
        for (int64_t v0 = 0; v0 < rows_; v0 += block) {
            const int64_t b = std::min(block, rows_ - v0);
            parallel_for(
                b, [&](int64_t v) { row(v0 + v, wide.data() + v * cols_); }, cols_);
            kernels::gemm_fp(false, true, n, b, cols_, 1.f, X, cols_, wide.data(), cols_, 0.f, Y + v0, rows_);
        }
    }

private:
    TableFormat format_ = TableFormat::Bf16;
    int64_t rows_ = 0, cols_ = 0;
    Tensor<float> float_;
    Tensor<bf16> bf16_;
    Tensor<int8_t> int8_;
    Tensor<float> scale_;
};

}  // namespace bitgrad::infer
