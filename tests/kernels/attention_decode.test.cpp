// attention_decode (kernels/attention_decode.hpp): every variant this CPU runs against the
// reference (the cache widened to float rows and attention_forward), for float and fp16 caches,
// head dims with and without a compiled-in size, GQA, S from 1 (a tail of the 4-key blocks) to 70,
// and positions beyond S holding garbage that must not be read.
#include "helpers.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "bitgrad/kernels/attention_decode.hpp"

using namespace bitgrad;

namespace {

struct Cache {
    std::vector<float> kf, vf;
    std::vector<fp16> kh, vh;
};

Cache random_cache(int64_t n, Rng& rng) {
    Cache c;
    for (auto* v : {&c.kf, &c.vf}) {
        v->resize(static_cast<std::size_t>(n));
        for (auto& x : *v) x = float(rng.normal());
    }
    for (int64_t i = 0; i < n; ++i) {
        c.kh.push_back(to_fp16(c.kf[std::size_t(i)]));
        c.vh.push_back(to_fp16(c.vf[std::size_t(i)]));
    }
    return c;
}

}  // namespace

TEST_CASE("attention_decode equals the reference - every variant this CPU runs with float and fp16 caches") {
    Rng rng(91);
    for (int64_t D : {8, 12, 16, 64, 128})
        for (auto [H, Hkv] : {std::pair<int64_t, int64_t>{4, 4}, {6, 2}})
            for (int64_t S : {1, 3, 4, 9, 70}) {
                const int64_t capacity = S + 5;
                Cache c = random_cache(Hkv * capacity * D, rng);
                // garbage beyond S: a kernel that reads past the visible keys changes its output
                for (int64_t h = 0; h < Hkv; ++h)
                    for (int64_t j = S; j < capacity; ++j)
                        for (int64_t d = 0; d < D; ++d) {
                            const std::size_t at = std::size_t((h * capacity + j) * D + d);
                            c.kf[at] = c.vf[at] = 1e4f;
                            c.kh[at] = c.vh[at] = to_fp16(1e4f);
                        }
                std::vector<float> q(static_cast<std::size_t>(H * D));
                for (auto& x : q) x = float(rng.normal());
                for (auto element : {kernels::KvElement::Float, kernels::KvElement::Fp16}) {
                    const bool half = element == kernels::KvElement::Fp16;
                    std::vector<float> ref(q.size()), out(q.size());
                    kernels::DecodeAttention a{S,
                                               capacity,
                                               H,
                                               Hkv,
                                               D,
                                               element,
                                               half ? static_cast<const void*>(c.kh.data()) : c.kf.data(),
                                               half ? static_cast<const void*>(c.vh.data()) : c.vf.data(),
                                               q.data(),
                                               ref.data()};
                    kernels::attention_decode_reference(a);
                    for (const auto& v : kernels::kAttentionDecodeVariants) {
                        if (!v.supported()) continue;  // the dispatch test names what this CPU skips
                        for (int threads : {1, 2}) {
                            const std::string kernel = v.name;
                            CAPTURE(kernel);
                            CAPTURE(D);
                            CAPTURE(H);
                            CAPTURE(Hkv);
                            CAPTURE(S);
                            CAPTURE(half);
                            CAPTURE(threads);
                            testing::ThreadCount t(threads);
                            std::fill(out.begin(), out.end(), 1e30f);
                            a.o = out.data();
                            kernels::attention_decode(a, v.id);
                            for (std::size_t i = 0; i < out.size(); ++i)
                                CHECK(std::abs(out[i] - ref[i]) <= 2e-5f * (1.f + std::abs(ref[i])));
                        }
                    }
                }
            }
}

TEST_CASE("attention_decode: the dispatch picks the first supported variant and bad sizes are refused") {
    const kernels::AttentionDecodeKernel best = kernels::attention_decode_kernel();
    for (const auto& v : kernels::kAttentionDecodeVariants)
        if (v.supported()) {
            CHECK(v.id == best);
            break;
        }
    for (const auto& v : kernels::kAttentionDecodeVariants)
        if (!v.supported())
            MESSAGE("this CPU cannot run the " << std::string(v.name) << " attention_decode kernel: not tested here");
    {
        kernels::AttentionDecodeKernelScope scope(kernels::AttentionDecodeKernel::Generic);
        CHECK(kernels::attention_decode_kernel() == kernels::AttentionDecodeKernel::Generic);
    }
    std::vector<float> kv(64, 0.f), q(8, 0.f), o(8);
    kernels::DecodeAttention a{5, 4, 1, 1, 8, kernels::KvElement::Float, kv.data(), kv.data(), q.data(), o.data()};
    CHECK_THROWS_WITH_AS(kernels::attention_decode(a), doctest::Contains("S = 5 of capacity 4"), Error);
    a.S = 4, a.H = 3, a.Hkv = 2;
    CHECK_THROWS_WITH_AS(kernels::attention_decode(a), doctest::Contains("H = 3"), Error);
}
