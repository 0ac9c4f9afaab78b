#pragma once
// gemv_int8's ARM NEON variant (kernels/gemv_int8.hpp describes it): four rows at a time, as Avx512.
#include <cstdint>

#include "bitgrad/kernels/gemv_int8/common.hpp"
#include "bitgrad/kernels/variant.hpp"

#if BITGRAD_KERNELS_ARM
#include <arm_neon.h>
#endif

namespace bitgrad::kernels::detail {

#if BITGRAD_KERNELS_ARM

// Four rows with NEON: 16 bytes widen (vmovl twice) to four int32x4, vcvtq to float, four FMAs per
// 16 products and row; the x loads are shared by the four rows. A row's 16 lanes are four float32x4,
// lane l summing the columns j = l (mod 16) as in dot_int8_generic, so dot_int8_finish ends it.
inline void dot4_int8_neon(const int8_t* q, int64_t in, const float* x, float* out) {
    float32x4_t acc[4][4];
    for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 4; ++c) acc[r][c] = vdupq_n_f32(0.f);
    int64_t j = 0;
    for (; j + kInt8Lanes <= in; j += kInt8Lanes) {
        float32x4_t xv[4];
        for (int c = 0; c < 4; ++c) xv[c] = vld1q_f32(x + j + 4 * c);
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r) {
            const int8x16_t bytes = vld1q_s8(q + r * in + j);
            const int16x8_t lo = vmovl_s8(vget_low_s8(bytes)), hi = vmovl_high_s8(bytes);
            const int32x4_t w[4] = {vmovl_s16(vget_low_s16(lo)), vmovl_high_s16(lo), vmovl_s16(vget_low_s16(hi)),
                                    vmovl_high_s16(hi)};
            for (int c = 0; c < 4; ++c) acc[r][c] = vfmaq_f32(acc[r][c], vcvtq_f32_s32(w[c]), xv[c]);
        }
    }
    for (int r = 0; r < 4; ++r) {
        float lanes[kInt8Lanes];
        for (int c = 0; c < 4; ++c) vst1q_f32(lanes + 4 * c, acc[r][c]);
        out[r] = dot_int8_finish(lanes, q + r * in, x, j, in);
    }
}

// Advanced SIMD is part of every AArch64 CPU.
inline bool gemv_int8_neon_supported() { return true; }

inline void gemv_int8_neon(const int8_t* Q, const float* scale, int64_t out, int64_t in, const float* x, float* y) {
    gemv_int8_by4<dot4_int8_neon>(Q, scale, out, in, x, y);
}

#else

inline bool gemv_int8_neon_supported() { return false; }
inline constexpr GemvInt8Fn gemv_int8_neon = nullptr;

#endif

}  // namespace bitgrad::kernels::detail
