#include "helpers.hpp"

using namespace bitgrad;

namespace lm_head_loss_test {
using V = std::vector<Var<double>>;

// The same loss composed of the unfused ops: logits = linear(h, W), then the losses on them.
Var<double> composed(const Var<double>& h, const Var<double>& W, const Tensor<double>& teacher_logits,
                     const Tensor<int32_t>& labels, double ce_w, double ad_w, double tau) {
    const int64_t V_ = W.dim(0);
    auto logits = reshape(linear(h, W), Shape{h.shape().rows(), V_});
    Var<double> loss;
    if (ce_w != 0) loss = scale(cross_entropy(logits, labels), ce_w);
    if (ad_w != 0) {
        auto ad = scale(soft_cross_entropy(logits, teacher_logits, tau), ad_w);
        loss = loss.defined() ? add(loss, ad) : ad;
    }
    return loss;
}
}  // namespace lm_head_loss_test
using namespace lm_head_loss_test;

TEST_CASE("lm_head_loss equals linear + cross_entropy / soft_cross_entropy - values and gradients over row blocks") {
    const int64_t N = 7, C = 5, Vc = 11;
    auto hv = testing::randn({N, C}, 1), Wv = testing::randn({Vc, C}, 2), Tv = testing::randn({N, Vc}, 3, 2.0);
    Tensor<int32_t> labels = Tensor<int32_t>::from({N}, {0, 10, -100, 3, 3, 7, 1});
    struct Case {
        double ce, ad, tau;
        int64_t block;
    };
    for (Case c : {Case{1, 0, 1, 3}, Case{0, 1, 1, 2}, Case{0.5, 0.5, 1, 4}, Case{0.5, 0.5, 2.0, 1}, Case{0, 1, 0.7, 7},
                   Case{0.3, 0.9, 1.5, 0}}) {
        CAPTURE(c.ce);
        CAPTURE(c.ad);
        CAPTURE(c.tau);
        CAPTURE(c.block);
        const auto teacher = TeacherLogits<double>::from_logits(Tv);
        LossTargets<double> tg;
        tg.labels = labels;
        tg.ce_weight = c.ce;
        tg.ad_weight = c.ad;
        tg.temperature = c.tau;
        tg.teacher = &teacher;
        tg.block_rows = c.block;
        Var<double> h1(hv.clone(), true), W1(Wv.clone(), true), h2(hv.clone(), true), W2(Wv.clone(), true);
        Tape tape;
        auto fused = lm_head_loss(h1, W1, tg);
        auto reference = composed(h2, W2, Tv, labels, c.ce, c.ad, c.tau);
        CHECK(fused.item() == doctest::Approx(reference.item()).epsilon(1e-12));
        backward(add(scale(fused, 0.7), scale(reference, 0.7)));  // an incoming gradient other than 1
        CHECK(max_abs_diff(h1.grad(), h2.grad()) < 1e-12);
        CHECK(max_abs_diff(W1.grad(), W2.grad()) < 1e-12);
    }
}

TEST_CASE("lm_head_loss gradcheck and teacher logits from hidden states") {
    const int64_t N = 5, C = 4, Vc = 6, Ct = 3;
    auto hv = testing::randn({N, C}, 4), Wv = testing::randn({Vc, C}, 5);
    auto th = testing::randn({N, Ct}, 6), tW = testing::randn({Vc, Ct}, 7, 2.0);
    const auto from_hidden = TeacherLogits<double>::from_hidden(th, tW);
    Tensor<double> full({N, Vc});
    kernels::gemm_reference(false, true, N, Vc, Ct, 1.0, th.data(), Ct, tW.data(), Ct, 0.0, full.data(), Vc);
    Tensor<double> rows({2, Vc});
    from_hidden.fill(2, 4, rows.data());
    for (int64_t i = 0; i < 2 * Vc; ++i) CHECK(rows[i] == doctest::Approx(full[2 * Vc + i]).epsilon(1e-14));
    Tensor<int32_t> labels = Tensor<int32_t>::from({N}, {5, 0, 2, -100, 1});
    LossTargets<double> tg;
    tg.labels = labels;
    tg.ce_weight = 0.4;
    tg.ad_weight = 0.6;
    tg.temperature = 1.3;
    tg.teacher = &from_hidden;
    tg.block_rows = 2;
    CHECK_GRADCHECK([&](const V& in) { return lm_head_loss(in[0], in[1], tg); }, {hv, Wv});
}

TEST_CASE("lm_head_loss errors name what does not match") {
    Var<double> h(testing::randn({4, 3}, 8), true), W(testing::randn({6, 3}, 9), true);
    LossTargets<double> tg;
    tg.labels = Tensor<int32_t>::from({4}, {0, 1, 6, 2});
    CHECK_THROWS_WITH_AS(lm_head_loss(h, W, tg), doctest::Contains("label 6 at row 2 is outside [0, 6)"), Error);
    tg.labels = Tensor<int32_t>::from({3}, {0, 1, 2});
    CHECK_THROWS_WITH_AS(lm_head_loss(h, W, tg), doctest::Contains("3 labels for 4 rows"), Error);
    tg.ce_weight = 0;
    tg.ad_weight = 1;
    CHECK_THROWS_WITH_AS(lm_head_loss(h, W, tg), doctest::Contains("needs teacher logits of 4 rows x 6 classes"),
                         Error);
    Var<double> wrong(testing::randn({6, 4}, 10), true);
    CHECK_THROWS_WITH_AS(lm_head_loss(h, wrong, tg), doctest::Contains("do not match"), Error);
}

TEST_CASE("lm_head_loss with an eager weight gradient adds the same dW during forward and checks the seed") {
    Var<double> h1(testing::randn({6, 4}, 11), true), W1(testing::randn({9, 4}, 12), true);
    Var<double> h2(h1.value().clone(), true), W2(W1.value().clone(), true);
    LossTargets<double> tg;
    tg.labels = Tensor<int32_t>::from({6}, {1, 2, 3, 4, 5, 8});
    tg.block_rows = 4;
    {
        Tape tape;
        backward(lm_head_loss(h1, W1, tg), Tensor<double>::scalar(0.25));
    }
    tg.eager_weight_grad_scale = 0.25;
    {
        Tape tape;
        auto loss = lm_head_loss(h2, W2, tg);
        CHECK(W2.grad().defined());  // already there before backward
        backward(loss, Tensor<double>::scalar(0.25));
    }
    CHECK(max_abs_diff(W1.grad(), W2.grad()) < 1e-14);
    CHECK(max_abs_diff(h1.grad(), h2.grad()) < 1e-14);
    Tape tape;
    auto loss = lm_head_loss(h2, W2, tg);
    CHECK_THROWS_WITH_AS(backward(loss, Tensor<double>::scalar(1.0)),
                         doctest::Contains("added during the forward pass for seed 0.25"), Error);
}
