// ThreadOverride (core/thread_override.hpp), the one per-thread setting behind PrecisionScope,
// ParallelMinWork, SignKernelScope, SignActivationsScope, Bf16KernelScope and GemvInt8KernelScope:
// unset by default, set for a scope, nested scopes restore what they found, other threads unaffected.
#include "helpers.hpp"

#include <cstdint>
#include <optional>
#include <thread>

#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/precision.hpp"
#include "bitgrad/core/thread_override.hpp"

using namespace bitgrad;

namespace thread_override_test {
struct TagA {};
struct TagB {};
}  // namespace thread_override_test

using namespace thread_override_test;

TEST_CASE("ThreadOverride sets a value for its scope - nests - restores - stays on its thread") {
    using A = ThreadOverride<int, TagA>;
    using B = ThreadOverride<int, TagB>;
    CHECK(!A::current().has_value());
    {
        A outer(3);
        CHECK(A::current() == std::optional<int>(3));
        CHECK(!B::current().has_value());  // another tag, another setting
        {
            A inner(5);
            CHECK(A::current() == std::optional<int>(5));
            std::optional<int> seen = 42;
            std::thread([&] { seen = A::current(); }).join();
            CHECK(!seen.has_value());  // a new thread starts unset
        }
        CHECK(A::current() == std::optional<int>(3));
    }
    CHECK(!A::current().has_value());
}

TEST_CASE("PrecisionScope and ParallelMinWork are ThreadOverrides with their defaults") {
    CHECK(matmul_precision() == Precision::FP32);
    CHECK(detail::parallel_min_work() == detail::kParallelMinWork);
    {
        PrecisionScope bf16(Precision::BF16);
        ParallelMinWork fork_always(1);
        CHECK(matmul_precision() == Precision::BF16);
        CHECK(detail::parallel_min_work() == 1);
        Precision other = Precision::BF16;
        int64_t other_work = 0;
        std::thread([&] {
            other = matmul_precision();
            other_work = detail::parallel_min_work();
        }).join();
        CHECK(other == Precision::FP32);
        CHECK(other_work == detail::kParallelMinWork);
    }
    CHECK(matmul_precision() == Precision::FP32);
    CHECK(detail::parallel_min_work() == detail::kParallelMinWork);
    CHECK(std::string(precision_name(Precision::FP32)) == "fp32");
    CHECK(std::string(precision_name(Precision::BF16)) == "bf16");
}
