#include "helpers.hpp"

#include <cmath>

using namespace bitgrad;

namespace precision_test {
double cosine(const Tensor<float>& a, const Tensor<float>& b) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
        ab += double(a[i]) * b[i];
        aa += double(a[i]) * a[i];
        bb += double(b[i]) * b[i];
    }
    return aa == 0 && bb == 0 ? 1.0 : ab / std::sqrt(aa * bb);
}

nn::LlamaConfig small_config() {
    nn::LlamaConfig c;
    c.vocab_size = 257;
    c.hidden_size = 64;
    c.intermediate_size = 160;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 64;
    return c;
}

struct StepResult {
    double loss;
    std::vector<Tensor<float>> grads;
};

StepResult run_step(Precision p, const train::Teacher<float>& teacher, const Tensor<int32_t>& inputs,
                    const Tensor<int32_t>& labels) {
    Rng rng(21);  // the same student every time
    nn::FbiLlama<float> student(small_config(), rng);
    train::StepOptions o;
    o.loss = train::Loss::Mixed;
    o.precision = p;
    StepResult r;
    r.loss = train::distill_step<float>(student, &teacher, inputs, labels, o);
    for (auto& prm : student.named_parameters()) r.grads.push_back(prm.var.grad().clone());
    return r;
}
}  // namespace precision_test
using namespace precision_test;

TEST_CASE("a bf16 training step agrees with the fp32 step - loss within bf16 rounding and gradients by cosine") {
    Rng rng(20);
    nn::DenseLlama<float> teacher_model(small_config(), rng);
    const auto teacher = train::llama_teacher<float>(teacher_model);
    Tensor<int32_t> windows({3, 33});
    for (auto& v : windows) v = int32_t(rng.uniform_int(257));
    const auto [inputs, labels] = data::split_inputs_labels(windows);
    const auto fp32 = run_step(Precision::FP32, teacher, inputs, labels);
    // The kernel this CPU runs in bf16, and the packed path under the emulated micro-kernel (the
    // AVX512_BF16 kernel's code path, checked on any CPU).
    std::vector<std::pair<const char*, StepResult>> runs;
    runs.push_back(
        {kernels::bf16_kernel_name(kernels::bf16_gemm_kernel()), run_step(Precision::BF16, teacher, inputs, labels)});
    {
        kernels::Bf16KernelScope emulated(kernels::Bf16Kernel::Emulated);
        runs.push_back({"emulated", run_step(Precision::BF16, teacher, inputs, labels)});
    }
    for (auto& [name, bf] : runs) {
        CAPTURE(name);
        // bf16 keeps 8 significant bits: logits move by ~0.4% of their size; the loss (about
        // log 257 = 5.5) by far less than 1%.
        CHECK(std::abs(bf.loss - fp32.loss) < 0.01 * fp32.loss);
        CHECK(bf.loss != fp32.loss);  // the products really ran in bf16
        double worst = 1;
        for (std::size_t i = 0; i < bf.grads.size(); ++i) worst = std::min(worst, cosine(bf.grads[i], fp32.grads[i]));
        INFO("lowest gradient cosine similarity " << worst);
        CHECK(worst > 0.99);
    }
}

TEST_CASE("fbi_linear under bf16 reads sign(W) exactly - values and gradients match fp32 within bf16 rounding") {
    Rng rng(22);
    const int64_t rows = 37, in = 45, out = 29;
    auto xv = Tensor<float>::randn({rows, in}, rng), Wv = Tensor<float>::randn({out, in}, rng);
    auto av = Tensor<float>::uniform({1, in}, rng, 0.5, 1.5), bv = Tensor<float>::randn({1, in}, rng, 0.1);
    auto g = Tensor<float>::randn({rows, out}, rng);
    Wv[5] = 0.f;  // sign(0) = +1 in both precisions
    auto run = [&](Precision p) {
        PrecisionScope scope(p);
        Var<float> x(xv.clone(), true), W(Wv.clone(), true), a(av.clone(), true), b(bv.clone(), true);
        Tape tape;
        auto y = fbi_linear(x, W, a, b);
        backward(y, g);
        return std::vector<Tensor<float>>{y.value().clone(), x.grad(), W.grad(), a.grad(), b.grad()};
    };
    const auto f = run(Precision::FP32);
    for (auto kernel : {kernels::bf16_gemm_kernel(), kernels::Bf16Kernel::Emulated}) {
        kernels::Bf16KernelScope scope(kernel);
        const auto h = run(Precision::BF16);
        for (std::size_t i = 0; i < f.size(); ++i) {
            CAPTURE(i);
            double scale = 0;
            for (float v : f[i]) scale = std::max(scale, double(std::abs(v)));
            // Only the float operand is rounded (S = +-1 is exact): errors ~2^-8 relative per term.
            CHECK(max_abs_diff(f[i], h[i]) < 0.02 * scale);
            CHECK(cosine(f[i], h[i]) > 0.999);
        }
    }
}
