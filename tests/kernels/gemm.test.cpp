#include "helpers.hpp"

using namespace bitgrad;

TEST_CASE("gemm matches the reference triple loop for every transpose - odd sizes - alpha and beta") {
    Rng rng(3);
    for (int64_t M : {1, 7, 65})
        for (int64_t N : {1, 63, 33})
            for (int64_t K : {1, 17, 64})
                for (int ta = 0; ta < 2; ++ta)
                    for (int tb = 0; tb < 2; ++tb) {
                        auto A = Tensor<float>::randn({ta ? K : M, ta ? M : K}, rng);
                        auto B = Tensor<float>::randn({tb ? N : K, tb ? K : N}, rng);
                        auto C = Tensor<float>::randn({M, N}, rng);
                        auto R = C.clone();
                        const int64_t lda = A.dim(1), ldb = B.dim(1);
                        kernels::gemm<float>(ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 2.0f, C.data(), N);
                        kernels::gemm_reference<float>(ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 2.0f,
                                                       R.data(), N);
                        // fp32 tolerance scaled by the length of the dot products
                        CHECK(max_abs_diff(C, R) < 1e-5 * (K + 4) * 4);
                    }
}

TEST_CASE("gemm with beta 0 ignores C's old contents (even NaN)") {
    Rng rng(4);
    auto A = Tensor<double>::randn({5, 3}, rng), B = Tensor<double>::randn({3, 4}, rng);
    auto C = Tensor<double>::full({5, 4}, std::numeric_limits<double>::quiet_NaN());
    auto R = Tensor<double>::zeros({5, 4});
    kernels::gemm<double>(false, false, 5, 4, 3, 1.0, A.data(), 3, B.data(), 4, 0.0, C.data(), 4);
    kernels::gemm_reference<double>(false, false, 5, 4, 3, 1.0, A.data(), 3, B.data(), 4, 0.0, R.data(), 4);
    CHECK(max_abs_diff(C, R) < 1e-12);
}
