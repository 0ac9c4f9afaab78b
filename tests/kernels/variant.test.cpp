// Kernel variants as data (kernels/variant.hpp): every family's list is well formed, and its
// dispatch is the list's first supported entry. A list that misses an id, repeats one, gives two
// variants one name, or ends in a variant some CPU cannot run fails here.
#include "helpers.hpp"

#include <set>
#include <string>

#include "bitgrad/kernels/attention_decode.hpp"
#include "bitgrad/kernels/gemm_bf16.hpp"
#include "bitgrad/kernels/gemv_int8.hpp"
#include "bitgrad/kernels/sign_lut.hpp"
#include "bitgrad/kernels/sign_matmul.hpp"
#include "bitgrad/kernels/sign_matmul_q8.hpp"

using namespace bitgrad;

namespace variant_test {

// ids and names unique, a function wherever supported, the last entry runs anywhere, and every id
// in `all` (the enum's values) has an entry.
template <class Id, class Fn, std::size_t N>
void check_list(const kernels::KernelVariant<Id, Fn> (&list)[N], std::initializer_list<Id> all, Id dispatched) {
    std::set<int> ids;
    std::set<std::string> names;
    for (const auto& v : list) {
        CAPTURE(std::string(v.name));
        CHECK(ids.insert(int(v.id)).second);
        CHECK(names.insert(v.name).second);
        CHECK(!std::string(v.name).empty());
        if (v.supported()) CHECK((v.run != nullptr));  // doctest cannot print a function pointer
    }
    CHECK(list[N - 1].supported());
    CHECK(ids.size() == all.size());
    for (Id id : all) CHECK(ids.count(int(id)) == 1);
    CHECK(dispatched == kernels::first_supported_variant(list));
    CHECK(kernels::variant_of(list, dispatched).supported());
}

}  // namespace variant_test

using namespace variant_test;

TEST_CASE("every kernel family's variant list is complete and its dispatch is the first supported entry") {
    using kernels::SignKernel;
    const auto sign_ids = {SignKernel::Reference, SignKernel::Avx2, SignKernel::Avx512, SignKernel::Neon};
    check_list(kernels::kSignVariants, sign_ids, kernels::sign_kernel());
    check_list(kernels::kSignQ8Variants, sign_ids, kernels::sign_q8_kernel());
    using kernels::Bf16Kernel;
    check_list(kernels::kBf16Variants, {Bf16Kernel::Avx512Bf16, Bf16Kernel::Emulated, Bf16Kernel::Fp32Fallback},
               kernels::bf16_gemm_kernel());
    using kernels::GemvInt8Kernel;
    check_list(kernels::kGemvInt8Variants,
               {GemvInt8Kernel::Generic, GemvInt8Kernel::Avx512, GemvInt8Kernel::Avx2, GemvInt8Kernel::Neon},
               kernels::gemv_int8_kernel());
    using kernels::SignLutKernel;
    check_list(kernels::kSignLutVariants, {SignLutKernel::Generic, SignLutKernel::Avx2}, kernels::sign_lut_kernel());
    using kernels::AttentionDecodeKernel;
    check_list(kernels::kAttentionDecodeVariants, {AttentionDecodeKernel::Generic, AttentionDecodeKernel::Avx2},
               kernels::attention_decode_kernel());
}

TEST_CASE("kernel names come from the variant lists") {
    CHECK(std::string(kernels::sign_kernel_name(kernels::SignKernel::Reference)) == "reference");
    CHECK(std::string(kernels::sign_kernel_name(kernels::SignKernel::Avx2)) == "avx2");
    CHECK(std::string(kernels::sign_kernel_name(kernels::SignKernel::Avx512)) == "avx512");
    CHECK(std::string(kernels::sign_kernel_name(kernels::SignKernel::Neon)) == "neon");
    CHECK(std::string(kernels::bf16_kernel_name(kernels::Bf16Kernel::Avx512Bf16)) == "avx512bf16");
    CHECK(std::string(kernels::bf16_kernel_name(kernels::Bf16Kernel::Emulated)) == "emulated");
    CHECK(std::string(kernels::bf16_kernel_name(kernels::Bf16Kernel::Fp32Fallback)) == "fp32-fallback");
}

TEST_CASE("variant_of names an id its list lacks instead of answering with another variant") {
    using Fn = void (*)();
    const kernels::KernelVariant<kernels::SignKernel, Fn> partial[] = {
        {kernels::SignKernel::Reference, "reference", kernels::always_supported, nullptr}};
    CHECK(std::string(kernels::variant_of(partial, kernels::SignKernel::Reference).name) == "reference");
    CHECK_THROWS_WITH_AS(kernels::variant_of(partial, kernels::SignKernel::Avx512),
                         doctest::Contains("missing from its family's variant list"), Error);
}

// The kernel tests run every supported entry against its reference; this says which entries those
// are on the CPU the suite runs on, so a build whose SIMD variants all reported "not supported"
// (and left only the portable ones tested) fails instead of passing on the reference alone. On
// AArch64 (tests/aarch64/run_kernel_tests.sh, under qemu) that is NEON in every family that has one.
TEST_CASE("the dispatch picks this CPU family's SIMD variants") {
    using kernels::GemvInt8Kernel;
    using kernels::SignKernel;
#if defined(__aarch64__)
    CHECK(kernels::sign_kernel() == SignKernel::Neon);
    CHECK(kernels::sign_q8_kernel() == SignKernel::Neon);
    CHECK(kernels::gemv_int8_kernel() == GemvInt8Kernel::Neon);
    CHECK(!kernels::sign_kernel_supported(SignKernel::Avx2));
    CHECK(kernels::sign_lut_kernel() == kernels::SignLutKernel::Generic);  // sign_lut has no NEON variant
    CHECK(kernels::attention_decode_kernel() == kernels::AttentionDecodeKernel::Generic);  // nor attention_decode
#elif defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        CHECK(kernels::sign_kernel() != SignKernel::Reference);
        CHECK(kernels::sign_q8_kernel() != SignKernel::Reference);
        CHECK(kernels::gemv_int8_kernel() != GemvInt8Kernel::Generic);
    }
    if (__builtin_cpu_supports("avx2")) CHECK(kernels::sign_lut_kernel() == kernels::SignLutKernel::Avx2);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        CHECK(kernels::attention_decode_kernel() == kernels::AttentionDecodeKernel::Avx2);
    CHECK(!kernels::sign_kernel_supported(SignKernel::Neon));
    CHECK(!kernels::variant_of(kernels::kGemvInt8Variants, GemvInt8Kernel::Neon).supported());
#else
    MESSAGE("no SIMD variants for this CPU family: the portable ones are tested");
    CHECK(kernels::sign_kernel() == SignKernel::Reference);
#endif
}
