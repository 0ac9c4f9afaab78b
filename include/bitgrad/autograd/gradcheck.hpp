#pragma once
// gradcheck: compares the tape's gradients with central finite differences, in double.
//
// With a random cotangent r (not all ones: for softmax or a normalisation sum(y) can be constant and
// a check against it would pass while testing nothing), the scalar L = sum(f(x) * r) is
// differentiated twice: by the tape (one backward with seed r) and numerically,
//   dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps),
// and every element must satisfy |analytic - numeric| <= atol + rtol * |numeric|.
//
// For ops whose forward is not differentiable (sign with a straight-through estimator) pass
// `numeric_f`: the finite differences are taken on it instead (the estimator's surrogate function).
//
// Public, for ops written outside the library (examples/08_custom_op.cpp): the result says whether
// every element passed, how many were compared, the largest error, and the worst element by name,
// so a program or a test of any framework can assert on it:
//   GradcheckResult r = gradcheck([](const std::vector<Var<double>>& in) { return my_op(in[0], in[1]); },
//                                 {x, w});
//   if (!r.ok) ...report r.message...
// A non-finite gradient (analytic or numeric) fails the check. Misuse (a `check` list of the wrong
// length, an output that depends on no checked input) throws bitgrad::Error.
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/rng.hpp"

namespace bitgrad {

struct GradcheckOptions {
    double eps = 1e-6;
    double atol = 1e-6;
    double rtol = 1e-4;
    uint64_t seed = 1234;     // for the random cotangent
    std::vector<bool> check;  // which inputs to check (default: all)
};

struct GradcheckResult {
    bool ok = true;
    int64_t elements = 0;      // gradient elements compared (all elements of the checked inputs)
    double max_abs_error = 0;  // max |analytic - numeric| (infinite if either was not finite)
    std::string message;       // the worst element when ok is false
};

using GradFn = std::function<Var<double>(const std::vector<Var<double>>&)>;

inline GradcheckResult gradcheck(const GradFn& f, const std::vector<Tensor<double>>& inputs,
                                 const GradcheckOptions& opt = {}, const GradFn& numeric_f = nullptr) {
    BITGRAD_CHECK(opt.check.empty() || opt.check.size() == inputs.size(),
                  "gradcheck: options.check has " << opt.check.size() << " entries for " << inputs.size()
                                                  << " inputs; give one per input, or none to check all");
    const GradFn& fn_numeric = numeric_f ? numeric_f : f;
    std::vector<Var<double>> vars;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const bool want = opt.check.empty() || opt.check[i];
        vars.emplace_back(inputs[i].clone(), want);
    }
    // Analytic: one backward with the random cotangent as seed.
    Tensor<double> cotangent;
    {
        Tape tape;
        Var<double> y = f(vars);
        Rng rng(opt.seed);
        cotangent = Tensor<double>::uniform(y.shape(), rng, -1.0, 1.0);
        BITGRAD_CHECK(y.requires_grad(), "gradcheck: the function's output does not depend on any checked input");
        backward(y, cotangent);
    }
    auto loss_at = [&]() {
        NoGrad guard;
        Var<double> y = fn_numeric(vars);
        BITGRAD_CHECK(y.shape() == cotangent.shape(),
                      "gradcheck: numeric_f returns shape " << y.shape() << ", f returned " << cotangent.shape());
        double s = 0;
        for (int64_t j = 0; j < y.numel(); ++j) s += y.value()[j] * cotangent[j];
        return s;
    };
    GradcheckResult result;
    double worst_excess = 0;
    for (std::size_t i = 0; i < vars.size(); ++i) {
        if (!vars[i].requires_grad()) continue;
        Tensor<double>& x = vars[i].value();
        const Tensor<double> analytic = vars[i].grad().defined() ? vars[i].grad() : Tensor<double>::zeros(x.shape());
        for (int64_t j = 0; j < x.numel(); ++j) {
            const double saved = x[j];
            x[j] = saved + opt.eps;
            const double lp = loss_at();
            x[j] = saved - opt.eps;
            const double lm = loss_at();
            x[j] = saved;
            const double numeric = (lp - lm) / (2 * opt.eps);
            // A NaN would compare false below and pass unseen: a non-finite error is the worst one.
            const double diff = std::abs(analytic[j] - numeric);
            const bool finite = std::isfinite(diff);
            const double err = finite ? diff : HUGE_VAL;
            const double excess = finite ? diff - (opt.atol + opt.rtol * std::abs(numeric)) : HUGE_VAL;
            ++result.elements;
            result.max_abs_error = std::max(result.max_abs_error, err);
            if (excess > worst_excess) {
                worst_excess = excess;
                result.ok = false;
                std::ostringstream os;
                os << "gradcheck: input " << i << " (shape " << x.shape() << ") element " << j << ": analytic "
                   << analytic[j] << " vs numeric " << numeric << " (|diff| " << err << ")";
                result.message = os.str();
            }
        }
    }
    return result;
}

}  // namespace bitgrad
