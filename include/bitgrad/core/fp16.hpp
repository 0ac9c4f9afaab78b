#pragma once
// IEEE binary16 ("fp16", "half"): 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. Range
// +-65504, ~3.3 significant digits, subnormals down to 2^-24. The packed 1-bit format stores each
// FBI layer's alpha and beta in it (as FBI-LLM's released checkpoints do in their fp16 form).
//   to_fp16: round to nearest even; overflow gives +-inf, NaN stays NaN.   to_float: exact.
// Written out bit by bit so that it is the same on every CPU (no F16C needed). to_fp16_n and
// to_float_n convert arrays (a KV cache's rows): with F16C (x86) 8 at a time, the same values
// (vcvtps2ph rounds to nearest even too; a NaN stays a NaN, its payload may differ), else the loops.
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace bitgrad {

struct fp16 {
    uint16_t bits = 0;
};

inline fp16 to_fp16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
    const uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return fp16{uint16_t(sign | 0x7e00u)};   // NaN (quiet)
    if (abs >= 0x477ff000u) return fp16{uint16_t(sign | 0x7c00u)};  // rounds past 65504: inf
    if (abs < 0x38800000u) {                                        // below 2^-14: subnormal or zero
        if (abs < 0x33000000u) return fp16{sign};                   // below 2^-25: rounds to zero
        // value = mantissa(with implicit 1) * 2^(e - 150); subnormal unit is 2^-24.
        const uint32_t e = abs >> 23, mant = (abs & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126 - e;  // 14..24 bits dropped (2^(e-150) / 2^-24 = 2^(e-126))
        uint32_t h = mant >> shift;
        const uint32_t rest = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (h & 1u))) ++h;
        return fp16{uint16_t(sign | h)};
    }
    // Normal: rebias the exponent (127 -> 15) and round the mantissa from 23 to 10 bits; a carry
    // out of the mantissa correctly bumps the exponent.
    uint32_t h = ((abs >> 13) - (112u << 10));
    const uint32_t rest = abs & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return fp16{uint16_t(sign | h)};
}

inline float to_float(fp16 h) {
    const uint32_t sign = uint32_t(h.bits & 0x8000u) << 16, exp = (h.bits >> 10) & 0x1fu, mant = h.bits & 0x3ffu;
    uint32_t u;
    if (exp == 0x1fu) {
        u = sign | 0x7f800000u | (mant << 13);  // inf / NaN
    } else if (exp != 0) {
        u = sign | ((exp + 112u) << 23) | (mant << 13);
    } else if (mant == 0) {
        u = sign;  // +-0
    } else {       // subnormal: normalise
        uint32_t m = mant, e = 113;
        while (!(m & 0x400u)) {
            m <<= 1;
            --e;
        }
        u = sign | (e << 23) | ((m & 0x3ffu) << 13);
    }
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// f rounded to the nearest fp16, as a float.
inline float round_to_fp16(float f) { return to_float(to_fp16(f)); }

namespace detail {
#if defined(__x86_64__) && defined(__GNUC__)
inline bool has_f16c() {
    static const bool yes = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
    return yes;
}
__attribute__((target("avx,f16c"))) inline int64_t to_fp16_f16c(const float* src, fp16* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    return i;
}
__attribute__((target("avx,f16c"))) inline int64_t to_float_f16c(const fp16* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    return i;
}
#else
inline bool has_f16c() { return false; }
inline int64_t to_fp16_f16c(const float*, fp16*, int64_t) { return 0; }
inline int64_t to_float_f16c(const fp16*, float*, int64_t) { return 0; }
#endif
}  // namespace detail

// dst [n] = to_fp16(src [n]) (header comment).
inline void to_fp16_n(const float* src, fp16* dst, int64_t n) {
    int64_t i = detail::has_f16c() ? detail::to_fp16_f16c(src, dst, n) : 0;
    for (; i < n; ++i) dst[i] = to_fp16(src[i]);
}
// dst [n] = to_float(src [n]).
inline void to_float_n(const fp16* src, float* dst, int64_t n) {
    int64_t i = detail::has_f16c() ? detail::to_float_f16c(src, dst, n) : 0;
    for (; i < n; ++i) dst[i] = to_float(src[i]);
}

}  // namespace bitgrad
