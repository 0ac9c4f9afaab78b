#pragma once
// TapeLM: a training model (nn::DenseLlama<double>, nn::FbiLlama<float>, ...) seen through the
// infer::CausalLM interface that evaluation takes, for tests of the evaluation protocols against sums
// computed by hand from the same model's tape forward. Each call runs the model's forward on the whole
// prefix (slow, and exact: no KV cache arithmetic of its own); the "keys" it keeps in the cache are the
// token ids, so a caller that keeps a cache of the wrong prefix gets other logits, as with a real model.
// The library's inference models are infer::Decoder (infer::FloatLlama(model) for a trained model).
#include "helpers.hpp"

namespace testing {

template <class Model>
class TapeLM final : public bitgrad::infer::CausalLM {
public:
    explicit TapeLM(const Model& model) : model_(model) {}
    const bitgrad::nn::LlamaConfig& config() const override { return model_.config; }
    int64_t bytes() const override { return 0; }
    void forward(const int32_t* ids, int64_t n, bitgrad::infer::KvCache& cache, float* logits,
                 int64_t logit_rows = 1) const override {
        using namespace bitgrad;
        REQUIRE(cache.length + n <= cache.capacity);
        REQUIRE(cache.format == infer::KvFormat::Float);
        float* keys = cache.k[0].data();  // head 0 of layer 0, [capacity, head_dim]: column 0 holds the token id
        const int64_t width = cache.head_dim, total = cache.length + n, V = model_.config.vocab_size;
        for (int64_t i = 0; i < n; ++i) keys[(cache.length + i) * width] = float(ids[i]);
        Tensor<int32_t> in({1, total});
        for (int64_t t = 0; t < total; ++t) in[t] = int32_t(keys[t * width]);
        NoGrad no_grad;
        const auto out = model_.forward(in).value();  // [1, total, V]
        for (int64_t r = 0; r < logit_rows; ++r)
            for (int64_t v = 0; v < V; ++v) logits[r * V + v] = float(out[(total - logit_rows + r) * V + v]);
        cache.length = total;
        ++calls;
        tokens_run += n;
    }
    mutable int64_t calls = 0, tokens_run = 0;  // forwards and the tokens they were given

private:
    const Model& model_;
};

// -log softmax(z)[target] in double, written out: what the protocols are compared against. The logits
// are rounded to float first, as every CausalLM returns them.
template <class T>
double hand_nll(const T* z, int64_t V, int64_t target) {
    double m = -1e300, sum = 0;
    for (int64_t v = 0; v < V; ++v) m = std::max(m, double(float(z[v])));
    for (int64_t v = 0; v < V; ++v) sum += std::exp(double(float(z[v])) - m);
    return m + std::log(sum) - double(float(z[target]));
}

}  // namespace testing
