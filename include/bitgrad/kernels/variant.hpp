#pragma once
// Kernel variants as data. A kernel family (sign_matmul, sign_matmul_q8, gemm_bf16, gemv_int8)
// declares its variants once, in preference order (fastest first, a portable one last):
//   inline constexpr KernelVariant<SignKernel, SignFn> kSignVariants[] = {
//       {SignKernel::Avx512, "avx512", detail::sign_avx512_supported, detail::sign_matmul_avx512}, ...};
// and everything else reads that list: the dispatch (first_supported_variant, unless the family's
// ThreadOverride scope names one), the kernel's printed name (variant_of(..).name), the tests (every
// supported entry against the reference) and the benches (every supported entry timed).
//
// Files: kernels/<family>.hpp holds the API, the reference, the list and the dispatch;
// kernels/<family>/common.hpp what every variant shares (layout, blocking); kernels/<family>/<isa>.hpp
// one instruction set each, under its own #if. Where an ISA is not built (another CPU family), its
// file still declares `<isa>_supported()` (false) and the function name as a null pointer, so the list
// is the same on every platform and a variant is run only after supported() said yes.
#include <cstddef>

#include "bitgrad/core/error.hpp"

// Which ISA files are built (-DBITGRAD_KERNELS_X86=0 compiles the portable variants only).
#ifndef BITGRAD_KERNELS_X86
#if defined(__x86_64__) && defined(__GNUC__)
#define BITGRAD_KERNELS_X86 1
#else
#define BITGRAD_KERNELS_X86 0
#endif
#endif

// The same for the ARM files (NEON is part of every AArch64 CPU; -DBITGRAD_KERNELS_ARM=0 turns them off).
#ifndef BITGRAD_KERNELS_ARM
#if defined(__aarch64__) && defined(__GNUC__)
#define BITGRAD_KERNELS_ARM 1
#else
#define BITGRAD_KERNELS_ARM 0
#endif
#endif

namespace bitgrad::kernels {

template <class Id, class Fn>
struct KernelVariant {
    Id id;
    const char* name;
    bool (*supported)();  // this CPU and this build can run it
    Fn run;               // nullptr where the ISA is not built (then supported() is false)
};

inline bool always_supported() { return true; }

// The entry for id. A list that misses an id is a bug in the family's header: it throws, naming it.
template <class Id, class Fn, std::size_t N>
const KernelVariant<Id, Fn>& variant_of(const KernelVariant<Id, Fn> (&list)[N], Id id) {
    for (const auto& v : list)
        if (v.id == id) return v;
    BITGRAD_CHECK(false, "kernels: variant " << int(id) << " is missing from its family's variant list");
    return list[0];  // not reached
}

// The first entry this CPU runs: the list's preference order.
template <class Id, class Fn, std::size_t N>
Id first_supported_variant(const KernelVariant<Id, Fn> (&list)[N]) {
    for (const auto& v : list)
        if (v.supported()) return v.id;
    BITGRAD_CHECK(false, "kernels: no supported variant (the last entry of a list must run anywhere)");
    return list[N - 1].id;  // not reached
}

}  // namespace bitgrad::kernels
