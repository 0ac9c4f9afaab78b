// Grouped-query attention at model level: 4 query heads over 2 (and 1) key/value heads.
//   - gradients of the model output w.r.t. a layer's k_proj / v_proj parameters equal finite
//     differences (dense teacher: plain gradcheck; FBI student: the straight-through surrogate);
//   - the GQA model's logits equal those of an MHA model whose k/v projections repeat each kv head
//     for its group of query heads.
#include "helpers.hpp"

#include <cmath>
#include <string>
#include <vector>

using namespace bitgrad;
using V = std::vector<Var<double>>;

namespace gqa_test {

constexpr int64_t kHeads = 4, kHeadDim = 4, kHidden = kHeads * kHeadDim, kVocab = 11;

nn::LlamaConfig config(int64_t kv_heads, Ste ste = Ste::Identity) {
    nn::LlamaConfig c = nn::LlamaConfig::preset("tiny");
    c.vocab_size = kVocab;
    c.hidden_size = kHidden;
    c.intermediate_size = 12;
    c.num_hidden_layers = 2;
    c.num_attention_heads = kHeads;
    c.num_key_value_heads = kv_heads;
    c.max_position_embeddings = 16;
    c.initializer_range = 0.5;  // large weights: logits far from uniform, so the check tests something
    c.ste = ste;
    return c;
}

Tensor<int32_t> token_ids(int64_t B, int64_t T, uint64_t seed) {
    Rng rng(seed);
    Tensor<int32_t> ids({B, T});
    for (auto& v : ids) v = int32_t(rng.uniform_int(uint64_t(kVocab)));
    return ids;
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// [Hkv * D, C] -> [H * D, C]: query head h reads kv head h / (H / Hkv) (or h % Hkv when wrong_map,
// a mapping that must NOT reproduce the GQA model).
Tensor<double> repeat_heads(const Tensor<double>& w, int64_t kv_heads, bool wrong_map = false) {
    const int64_t C = w.dim(1), group = kHeads / kv_heads;
    Tensor<double> out({kHeads * kHeadDim, C});
    for (int64_t h = 0; h < kHeads; ++h) {
        const int64_t src = wrong_map ? h % kv_heads : h / group;
        for (int64_t d = 0; d < kHeadDim; ++d)
            for (int64_t c = 0; c < C; ++c) out.at({h * kHeadDim + d, c}) = w.at({src * kHeadDim + d, c});
    }
    return out;
}

template <class Model>
double gqa_vs_mha(const Model& gqa, int64_t kv_heads, bool wrong_map, const Tensor<int32_t>& ids) {
    Rng rng(77);
    Model mha(config(kHeads), rng);
    auto dict = gqa.state_dict();
    for (auto& [name, t] : dict) {
        const bool kv = name.find("k_proj") != std::string::npos || name.find("v_proj") != std::string::npos;
        if (kv && ends_with(name, ".weight")) t = repeat_heads(t, kv_heads, wrong_map);
    }
    mha.load_state_dict(dict);
    return max_abs_diff(gqa.forward(ids).value(), mha.forward(ids).value());
}

// Latent weights away from the Clipped STE's kinks at +-1.
void away_from_kinks(Tensor<double>& w) {
    for (auto& v : w)
        if (std::abs(std::abs(v) - 1) < 0.05) v *= 1.2;
}

double surrogate(Ste ste, double x) { return ste == Ste::Clipped ? std::max(-1.0, std::min(1.0, x)) : x; }

}  // namespace gqa_test

TEST_CASE("GQA dense model: gradcheck of the output and the CE loss w.r.t. k_proj and v_proj") {
    for (int64_t kv : {2, 1}) {
        CAPTURE(kv);
        Rng rng(1);
        nn::DenseLlama<double> model(gqa_test::config(kv), rng);
        auto ids = gqa_test::token_ids(2, 6, 2), labels = gqa_test::token_ids(1, 12, 3).reshape({12});
        auto& attn = model.model.layers[1]->self_attn;
        REQUIRE(attn.k_proj.weight.shape() == (Shape{kv * gqa_test::kHeadDim, gqa_test::kHidden}));
        const Var<double> k_saved = attn.k_proj.weight, v_saved = attn.v_proj.weight;
        // The layer's weights become the gradcheck's inputs for the duration of the call.
        auto logits = [&](const V& in) {
            attn.k_proj.weight = in[0];
            attn.v_proj.weight = in[1];
            return model.forward(ids);
        };
        auto loss = [&](const V& in) {
            return cross_entropy(reshape(logits(in), Shape{12, gqa_test::kVocab}), labels);
        };
        CHECK_GRADCHECK(logits, {k_saved.value(), v_saved.value()});
        // A scalar loss: its cotangent is one random number scaling both sides, so the check is
        // made relative (a tiny atol) whatever that number is.
        GradcheckOptions o;
        o.atol = 1e-8;
        CHECK_GRADCHECK(loss, {k_saved.value(), v_saved.value()}, o);
        attn.k_proj.weight = k_saved;
        attn.v_proj.weight = v_saved;
    }
}

TEST_CASE("GQA FBI model: k_proj and v_proj gradients through the STE equal the surrogate's finite differences") {
    // The STE claims dL/dW = ste'(W) * alpha * dL/dW_hat. At model level the downstream gradient
    // depends on the forward, so the surrogate keeps the forward at the point W0 and lets only the
    // surrogate move: W_hat(W) = alpha * (sign(W0) + s(W) - s(W0)) + beta, evaluated in a dense
    // mirror model (every FBI layer replaced by its W_hat, built here with plain loops).
    for (Ste ste : {Ste::Identity, Ste::Clipped}) {
        for (int64_t kv : {2, 1}) {
            CAPTURE(kv);
            CAPTURE(std::string(ste_name(ste)));
            Rng rng(3);
            nn::FbiLlama<double> student(gqa_test::config(kv, ste), rng);
            auto& attn = student.model.layers[0]->self_attn;
            gqa_test::away_from_kinks(attn.k_proj.weight.value());
            gqa_test::away_from_kinks(attn.v_proj.weight.value());
            auto ids = gqa_test::token_ids(2, 6, 4);

            // The dense mirror: W_hat[i, j] = alpha[j] * sign(W[i, j]) + beta[j] for every FBI layer.
            Rng mirror_rng(4);
            nn::DenseLlama<double> mirror(gqa_test::config(kv), mirror_rng);
            auto fbi = student.state_dict();
            nn::StateDict<double> dense;
            for (auto& p : student.named_parameters()) {
                if (gqa_test::ends_with(p.name, ".wscale") || gqa_test::ends_with(p.name, ".wbias")) continue;
                if (p.kind != ParamKind::Binary) {
                    dense[p.name] = p.var.value().clone();
                    continue;
                }
                const std::string base = p.name.substr(0, p.name.size() - std::string(".weight").size());
                const Tensor<double>&W = p.var.value(), &a = fbi.at(base + ".wscale"), &b = fbi.at(base + ".wbias");
                Tensor<double> w_hat(W.shape());
                const int64_t in = W.dim(1);
                for (int64_t i = 0; i < W.numel(); ++i) w_hat[i] = a[i % in] * (W[i] >= 0 ? 1.0 : -1.0) + b[i % in];
                dense[p.name] = w_hat;
            }
            mirror.load_state_dict(dense);
            CHECK(max_abs_diff(student.forward(ids).value(), mirror.forward(ids).value()) < 1e-12);

            auto& mk = mirror.model.layers[0]->self_attn.k_proj.weight.value();
            auto& mv = mirror.model.layers[0]->self_attn.v_proj.weight.value();
            const Tensor<double> Wk0 = attn.k_proj.weight.value().clone(), Wv0 = attn.v_proj.weight.value().clone();
            const V saved = {attn.k_proj.weight, attn.v_proj.weight, attn.k_proj.wscale,
                             attn.k_proj.wbias,  attn.v_proj.wscale, attn.v_proj.wbias};
            auto install = [&](const V& in) {
                attn.k_proj.weight = in[0];
                attn.v_proj.weight = in[1];
                attn.k_proj.wscale = in[2];
                attn.k_proj.wbias = in[3];
                attn.v_proj.wscale = in[4];
                attn.v_proj.wbias = in[5];
            };
            auto f = [&](const V& in) {
                install(in);
                return student.forward(ids);
            };
            auto straight_through = [&](const Tensor<double>& W, const Tensor<double>& W0, const Tensor<double>& a,
                                        const Tensor<double>& b, Tensor<double>& out) {
                const int64_t in = W.dim(1);
                for (int64_t i = 0; i < W.numel(); ++i) {
                    const double s0 = W0[i] >= 0 ? 1.0 : -1.0;
                    out[i] =
                        a[i % in] * (s0 + gqa_test::surrogate(ste, W[i]) - gqa_test::surrogate(ste, W0[i])) + b[i % in];
                }
            };
            auto numeric = [&](const V& in) {
                straight_through(in[0].value(), Wk0, in[2].value(), in[3].value(), mk);
                straight_through(in[1].value(), Wv0, in[4].value(), in[5].value(), mv);
                return mirror.forward(ids);
            };
            std::vector<Tensor<double>> inputs;
            for (auto& s : saved) inputs.push_back(s.value().clone());

            GradcheckOptions only_w;
            only_w.check = {true, true, false, false, false, false};
            CHECK_GRADCHECK(f, inputs, only_w, numeric);
            // alpha and beta of k_proj and v_proj: smooth, against the real (sign) forward.
            GradcheckOptions scales;
            scales.check = {false, false, true, true, true, true};
            CHECK_GRADCHECK(f, inputs, scales);
            install(saved);
        }
    }
}

TEST_CASE("GQA models equal MHA models whose k and v projections repeat each kv head per group") {
    auto ids = gqa_test::token_ids(2, 7, 6);
    for (int64_t kv : {2, 1}) {
        CAPTURE(kv);
        Rng rng(5);
        nn::DenseLlama<double> dense(gqa_test::config(kv), rng);
        nn::FbiLlama<double> student(gqa_test::config(kv), rng);
        CHECK(gqa_test::gqa_vs_mha(dense, kv, false, ids) < 1e-12);
        CHECK(gqa_test::gqa_vs_mha(student, kv, false, ids) < 1e-12);
        if (kv == 2) {
            // Query head h reads kv head h / 2; reading h % 2 instead is a different model.
            CHECK(gqa_test::gqa_vs_mha(dense, kv, true, ids) > 1e-6);
            CHECK(gqa_test::gqa_vs_mha(student, kv, true, ids) > 1e-6);
        }
    }
}
