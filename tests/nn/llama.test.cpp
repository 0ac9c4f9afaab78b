#include <algorithm>
#include "helpers.hpp"

using namespace bitgrad;
using V = std::vector<Var<double>>;

static nn::LlamaConfig micro_config() {
    nn::LlamaConfig c = nn::LlamaConfig::preset("tiny");
    c.vocab_size = 11;
    c.hidden_size = 8;
    c.intermediate_size = 12;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.initializer_range = 0.5;  // large weights: a gradcheck on near-zero logits would test little
    return c;
}

static Tensor<int32_t> token_ids(int64_t B, int64_t T, int64_t vocab, uint64_t seed) {
    Rng rng(seed);
    Tensor<int32_t> ids({B, T});
    for (auto& v : ids) v = int32_t(rng.uniform_int(uint64_t(vocab)));
    return ids;
}

TEST_CASE("tiny LLaMA end to end in double: tape gradients equal finite differences for every parameter") {
    // Teacher: every parameter. Student: every parameter but the latent binary weights, whose
    // gradient goes through the STE (checked at the layer level in tests/ops/fbi_linear.test.cpp).
    auto ids = token_ids(2, 5, 11, 1);
    auto check_model = [&](auto& model) {
        auto params = model.named_parameters();
        Rng rng(9);
        auto logits0 = model.forward(ids);
        auto r = Tensor<double>::uniform(logits0.shape(), rng, -1, 1);
        model.zero_grad();
        {
            Tape tape;
            backward(model.forward(ids), r);
        }
        auto loss = [&] {
            auto y = model.forward(ids);
            double s = 0;
            for (int64_t i = 0; i < y.numel(); ++i) s += y.value()[i] * r[i];
            return s;
        };
        int checked = 0;
        double worst = 0;
        std::string worst_name;
        for (auto& p : params) {
            if (p.kind == ParamKind::Binary) continue;
            Tensor<double>& w = p.var.value();
            for (int64_t j = 0; j < w.numel(); ++j) {
                const double saved = w[j], eps = 1e-6;
                w[j] = saved + eps;
                const double lp = loss();
                w[j] = saved - eps;
                const double lm = loss();
                w[j] = saved;
                const double numeric = (lp - lm) / (2 * eps), analytic = p.var.grad()[j];
                const double excess = std::abs(numeric - analytic) - (1e-6 + 1e-4 * std::abs(numeric));
                if (excess > worst) {
                    worst = excess;
                    worst_name = p.name + "[" + std::to_string(j) + "]";
                }
                ++checked;
            }
        }
        INFO("worst element: " << worst_name);
        CHECK(worst == 0.0);
        return checked;
    };
    Rng rng(3);
    nn::DenseLlama<double> teacher(micro_config(), rng);
    CHECK(check_model(teacher) == teacher.num_parameters());
    nn::FbiLlama<double> student(micro_config(), rng);
    CHECK(check_model(student) > 0);
}

TEST_CASE("causality: changing token t+1 leaves the logits at positions <= t unchanged") {
    Rng rng(4);
    nn::FbiLlama<float> model(nn::LlamaConfig::preset("tiny"), rng);
    auto ids = token_ids(2, 9, 64, 2);
    auto before = model.forward(ids).value().clone();
    for (int64_t t : {8, 4, 1}) {
        auto changed = ids.clone();
        changed.at({1, t}) = (changed.at({1, t}) + 7) % 64;
        auto after = model.forward(changed).value();
        const int64_t V = 64;
        for (int64_t s = 0; s < 9; ++s) {
            double diff = 0;
            for (int64_t c = 0; c < V; ++c)
                diff = std::max(diff, double(std::abs(after.at({1, s, c}) - before.at({1, s, c}))));
            if (s < t)
                CHECK(diff == 0.0);
            else if (s == t)
                CHECK(diff > 0.0);
        }
        for (int64_t i = 0; i < 9 * V; ++i) CHECK(after[i] == before[i]);  // batch row 0 untouched
    }
}

TEST_CASE("GQA equals MHA when kv heads are repeated in the k/v projections") {
    nn::LlamaConfig gqa_c = nn::LlamaConfig::preset("tiny");
    gqa_c.num_key_value_heads = 2;  // 4 query heads share 2 kv heads
    nn::LlamaConfig mha_c = nn::LlamaConfig::preset("tiny");
    Rng rng(5);
    nn::DenseLlama<double> gqa(gqa_c, rng), mha(mha_c, rng);
    auto dict = gqa.state_dict();
    const int64_t D = gqa_c.head_dim(), C = gqa_c.hidden_size;
    for (auto& [name, t] : dict) {
        if (name.find("k_proj") == std::string::npos && name.find("v_proj") == std::string::npos) continue;
        Tensor<double> rep({4 * D, C});
        for (int64_t h = 0; h < 4; ++h)
            for (int64_t d = 0; d < D; ++d)
                for (int64_t c = 0; c < C; ++c) rep.at({h * D + d, c}) = t.at({(h / 2) * D + d, c});
        t = rep;
    }
    mha.load_state_dict(dict);
    auto ids = token_ids(2, 7, 64, 3);
    CHECK(max_abs_diff(gqa.forward(ids).value(), mha.forward(ids).value()) < 1e-12);
    CHECK(gqa.model.layers[0]->self_attn.k_proj.weight.shape() == Shape{2 * D, C});
}

TEST_CASE("Hugging Face parameter names and the 130M count") {
    Rng rng(6);
    nn::LlamaConfig c = nn::LlamaConfig::preset("130M");
    c.num_hidden_layers = 1;  // names only; the full count is computed from the formula below
    nn::FbiLlama<float> one_layer(c, rng);
    std::vector<std::string> names;
    for (auto& p : one_layer.named_parameters()) names.push_back(p.name);
    auto has = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
    CHECK(has("model.embed_tokens.weight"));
    CHECK(has("model.layers.0.self_attn.q_proj.weight"));
    CHECK(has("model.layers.0.self_attn.o_proj.wscale"));
    CHECK(has("model.layers.0.mlp.down_proj.wbias"));
    CHECK(has("model.layers.0.input_layernorm.weight"));
    CHECK(has("model.layers.0.post_attention_layernorm.weight"));
    CHECK(has("model.norm.weight"));
    CHECK(has("lm_head.weight"));
    CHECK_FALSE(has("lm_head.wscale"));
    // Count per decoder layer from the model itself, then 12 layers + embedding, norm, lm_head.
    const int64_t per_layer = nn::param_stats(*one_layer.model.layers[0]).total;
    CHECK(per_layer == 4 * 768 * 768 + 3 * 768 * 2048 + 2 * (6 * 768 + 2048) + 2 * 768);
    CHECK(2 * 32000 * 768 + 12 * per_layer + 768 == 134265600);
}

TEST_CASE("set_ste changes the backward of every binarized layer - assigning config.ste does not") {
    // Latent weights of magnitude 0.5 and 1.5 alternating: the clipped STE passes the gradient where
    // |W| <= 1 and stops it where |W| > 1; identity passes it everywhere.
    nn::LlamaConfig c = micro_config();
    Rng rng(5);
    nn::FbiLlama<double> model(c, rng);
    auto layers = nn::fbi_layers(model);
    REQUIRE(layers.size() == 7 * 2);
    for (auto& [name, layer] : layers) {
        Tensor<double>& w = layer->weight.value();
        for (int64_t j = 0; j < w.numel(); ++j) w[j] = (w[j] >= 0 ? 1 : -1) * (j % 2 ? 1.5 : 0.5);
    }
    const auto ids = token_ids(2, 5, c.vocab_size, 6);
    Rng cot(7);
    const auto r = Tensor<double>::uniform({2, 5, c.vocab_size}, cot, -1, 1);
    auto weight_grads = [&] {
        model.zero_grad();
        {
            Tape tape;
            backward(model.forward(ids), r);
        }
        std::vector<Tensor<double>> g;
        for (auto& [name, layer] : layers) g.push_back(layer->weight.grad().clone());
        return g;
    };
    const auto identity = weight_grads();
    model.config.ste = Ste::Clipped;  // the config alone: the layers still use identity
    CHECK(model.ste() == Ste::Identity);
    const auto unchanged = weight_grads();
    model.set_ste(Ste::Clipped);
    CHECK(model.ste() == Ste::Clipped);
    CHECK(model.config.ste == Ste::Clipped);
    const auto clipped = weight_grads();
    int64_t stopped = 0;
    for (std::size_t l = 0; l < layers.size(); ++l) {
        INFO(layers[l].first);
        const Tensor<double>& w = layers[l].second->weight.value();
        CHECK(layers[l].second->ste == Ste::Clipped);
        for (int64_t j = 0; j < w.numel(); ++j) {
            CHECK(unchanged[l][j] == identity[l][j]);
            if (std::abs(w[j]) > 1) {
                CHECK(clipped[l][j] == 0.0);
                stopped += identity[l][j] != 0.0;
            } else {
                CHECK(clipped[l][j] == identity[l][j]);
            }
        }
    }
    CHECK(stopped > 100);  // the identity gradients that clipping stopped were there
}

TEST_CASE("config validation names the field") {
    auto c = nn::LlamaConfig::preset("tiny");
    c.num_key_value_heads = 3;
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("num_key_value_heads 3 does not divide"), Error);
    c = nn::LlamaConfig::preset("tiny");
    c.hidden_size = 18;
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("hidden_size 18 is not divisible"), Error);
    CHECK_THROWS_WITH_AS(nn::LlamaConfig::preset("3B"), doctest::Contains("unknown preset '3B'"), Error);
}

TEST_CASE("130M summary reports 134265600 parameters" * doctest::test_suite("slow")) {
    Rng rng(7);
    nn::FbiLlama<float> model(nn::LlamaConfig::preset("130M"), rng);
    auto text = nn::model_summary(model, "FBI-LLM 130M");
    INFO(text);
    CHECK(text.find("Total params:            134,265,600") != std::string::npos);
    CHECK(text.find("model.layers.11") != std::string::npos);
    auto s = nn::param_stats(model);
    CHECK(s.binary == 12 * (4 * 768 * 768 + 3 * 768 * 2048));
}

TEST_CASE("param_stats of a config counts what the model's parameters hold - binarized - dense - and GQA") {
    Rng rng(8);
    nn::LlamaConfig c = nn::LlamaConfig::preset("tiny");
    c.num_key_value_heads = c.num_attention_heads / 2;
    auto check = [&](const auto& model) {
        const auto from_model = nn::param_stats(model), from_config = nn::param_stats(model.config);
        CHECK(from_config.total == from_model.total);
        CHECK(from_config.binary == from_model.binary);
        CHECK((from_config.binary > 0) == model.config.binarized);
    };
    c.binarized = true;
    check(nn::FbiLlama<float>(c, rng));
    c.binarized = false;
    check(nn::DenseLlama<float>(c, rng));
}
