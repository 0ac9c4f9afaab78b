#include "helpers.hpp"

#include <memory>

using namespace bitgrad;

// An op written as a user outside the library writes one: only record_op, grad_sink and
// accumulate_grad. cube(x) = x^3, dx += 3 x^2 g.
template <class T>
Var<T> cube(const Var<T>& x) {
    Tensor<T> y = x.value().clone();
    for (auto& v : y) v = v * v * v;
    return record_op("cube", std::move(y), {x}, [x](const Tensor<T>& g) {
        if (Tensor<T>* gx = grad_sink(x))
            for (int64_t i = 0; i < g.numel(); ++i) (*gx)[i] += T(3) * x.value()[i] * x.value()[i] * g[i];
    });
}
// flatten(x) = x viewed as one row: the gradient passes through with accumulate_grad.
template <class T>
Var<T> flatten(const Var<T>& x) {
    return record_op("flatten", x.value().reshape(Shape{x.numel()}), {x},
                     [sx = x.slot()](const Tensor<T>& g) { accumulate_grad(sx, g); });
}

TEST_CASE("an op written with the public extension API gets its gradients and adds to other uses") {
    Var<double> x(Tensor<double>::from({2, 2}, {1.0, -2.0, 0.5, 3.0}), true);
    Tape tape;
    // y = sum(flatten(cube(x))) + sum(x): x is used twice, so dx = 3 x^2 + 1.
    Var<double> y = add(sum(flatten(cube(x))), sum(x));
    CHECK(tape.size() == 5);
    tape.backward(y);
    REQUIRE(x.grad().defined());
    CHECK(x.grad().shape() == Shape{2, 2});
    CHECK(x.grad()[0] == doctest::Approx(4.0));
    CHECK(x.grad()[1] == doctest::Approx(13.0));
    CHECK(x.grad()[2] == doctest::Approx(1.75));
    CHECK(x.grad()[3] == doctest::Approx(28.0));
}

TEST_CASE("the public extension API passes gradcheck") {
    CHECK_GRADCHECK([](const std::vector<Var<double>>& in) { return flatten(cube(in[0])); },
                    {testing::randn({3, 5}, 11)});
}

TEST_CASE("record_op records nothing without a tape - under NoGrad - or without an input that needs a gradient") {
    Var<double> w(Tensor<double>::from({2}, {1.0, 2.0}), true);
    Var<double> c(Tensor<double>::from({2}, {1.0, 2.0}));
    CHECK_FALSE(cube(w).requires_grad());  // no tape
    Tape tape;
    {
        NoGrad guard;
        CHECK_FALSE(cube(w).requires_grad());
    }
    CHECK_FALSE(cube(c).requires_grad());
    CHECK(tape.size() == 0);
    CHECK(cube(w).requires_grad());
    CHECK(tape.size() == 1);
}

TEST_CASE("a backward closure runs once and is freed right after it ran") {
    auto witness = std::make_shared<int>(0);
    Var<double> x(Tensor<double>::from({3}, {1.0, 2.0, 3.0}), true);
    Tape tape;
    Var<double> y = record_op("counted", x.value().clone(), {x}, [x, witness](const Tensor<double>& g) {
        ++*witness;
        accumulate_grad(x, g);
    });
    CHECK(witness.use_count() == 2);  // held by the tape's record
    tape.backward(sum(y));
    CHECK(*witness == 1);
    CHECK(witness.use_count() == 1);
    CHECK(x.grad()[2] == 1.0);
}

TEST_CASE("accumulate_grad refuses a gradient with another number of elements") {
    Var<double> x(Tensor<double>::from({3}, {1.0, 2.0, 3.0}), true);
    CHECK_THROWS_WITH_AS(
        accumulate_grad(x, Tensor<double>::ones({2, 2})),
        doctest::Contains("accumulate_grad: the gradient has shape [2, 2] (4 elements), the input [3]"), Error);
    accumulate_grad(x, Tensor<double>::ones({3, 1}));  // same elements, another shape: reshape's case
    CHECK(x.grad().shape() == Shape{3});
    CHECK(x.grad()[1] == 1.0);
}
