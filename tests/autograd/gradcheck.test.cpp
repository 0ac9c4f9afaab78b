#include "helpers.hpp"

#include <cmath>
#include <limits>

using namespace bitgrad;
using V = std::vector<Var<double>>;

TEST_CASE("gradcheck passes a correct op and says how many elements it compared") {
    const Tensor<double> a = testing::randn({3, 2}, 1), b = testing::randn({3, 2}, 2);
    auto f = [](const V& in) { return mul(in[0], in[1]); };
    const GradcheckResult all = gradcheck(f, {a, b});
    CHECK(all.ok);
    CHECK(all.elements == 12);  // both inputs, 6 elements each
    CHECK(all.max_abs_error < 1e-8);
    CHECK(all.message.empty());
    GradcheckOptions first_only;
    first_only.check = {true, false};
    CHECK(gradcheck(f, {a, b}, first_only).elements == 6);
}

TEST_CASE("a NaN gradient fails gradcheck") {
    // NaN compares false with every tolerance: the check must not read that as "within tolerance".
    auto nan_backward = [](const V& in) {
        const Var<double>& x = in[0];
        return record_op("nan_backward", x.value().clone(), {x}, [sx = x.slot()](const Tensor<double>& g) {
            if (Tensor<double>* gx = grad_sink(sx))
                for (int64_t i = 0; i < g.numel(); ++i) (*gx)[i] += std::numeric_limits<double>::quiet_NaN();
        });
    };
    const GradcheckResult r = gradcheck(nan_backward, {testing::randn({4}, 3)});
    CHECK_FALSE(r.ok);
    CHECK(std::isinf(r.max_abs_error));
    CHECK(r.message.find("element 0") != std::string::npos);
}

TEST_CASE("gradcheck refuses a check list that does not name every input") {
    GradcheckOptions opt;
    opt.check = {true};
    CHECK_THROWS_WITH_AS(
        gradcheck([](const V& in) { return add(in[0], in[1]); }, {testing::randn({2}, 4), testing::randn({2}, 5)}, opt),
        doctest::Contains("options.check has 1 entries for 2 inputs"), Error);
}
