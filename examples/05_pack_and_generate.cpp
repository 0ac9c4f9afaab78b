// 05_pack_and_generate: from a trained 1-bit model to fast inference.
//
// Every decoder weight of an FBI-LLM is W_hat[i, j] = alpha[j] * sign(W[i, j]) + beta[j]. Once
// training is over, neither the float latent W nor W_hat is needed: the signs (1 bit a weight),
// alpha and beta are the whole layer, and it computes
//     y = sign(W) (alpha * x) + (beta . x)
// with additions and subtractions of alpha * x instead of multiplications by float weights. This program
//   1. trains a tiny FBI-LLM to continue a pattern (count up by one, modulo 32),
//   2. packs it (infer::PackedLlama), writes and re-reads the packed file, and compares sizes,
//   3. continues a prompt greedily with the KV cache: by default (int8 activations), and with the
//      exact option (float activations), which must give the float model's tokens,
//   4. times decoding at a larger shape: packed 1-bit layers against the same layers as float W_hat.
#include <bitgrad/bitgrad.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>

using namespace bitgrad;

int main() {
    // 1. Train: sequences k, k+1, k+2, ... (mod 32) from a random start k.
    nn::LlamaConfig config;
    config.vocab_size = 32;
    config.hidden_size = 64;
    config.intermediate_size = 128;
    config.num_hidden_layers = 2;
    config.num_attention_heads = 4;
    config.num_key_value_heads = 4;
    config.max_position_embeddings = 64;
    Rng rng(5);
    nn::FbiLlama<float> model(config, rng);
    optim::AdamW<float> adamw(optim::param_groups(model.named_parameters(), 0.0), optim::AdamWOptions{});
    const int64_t B = 16, T = 24;
    for (int step = 1; step <= 150; ++step) {
        Tensor<int32_t> input({B, T}), labels({B, T});
        for (int64_t b = 0; b < B; ++b) {
            const int64_t start = int64_t(rng.uniform_int(32));
            for (int64_t t = 0; t < T; ++t) {
                input[b * T + t] = int32_t((start + t) % 32);
                labels[b * T + t] = int32_t((start + t + 1) % 32);
            }
        }
        Tape tape;
        Var<float> loss = cross_entropy(model.forward(input), labels);  // logits [B, T, V], one label per row
        tape.backward(loss);
        adamw.step(/*lr=*/3e-3);
        model.zero_grad();
        if (step % 50 == 0) std::printf("step %3d  loss %.4f\n", step, double(loss.item()));
    }

    // 2. Pack, write, read back. Only the signs, alpha, beta, norms and the two tables remain
    //    (the embedding and lm_head in int8 with a scale per row, the default).
    const infer::PackedLlama packed(model);
    const auto path = std::filesystem::temp_directory_path() / "bitgrad-05.packed.safetensors";
    infer::save_packed(path, packed);
    const infer::PackedLlama loaded = infer::load_packed(path.string());
    const auto stats = nn::param_stats(model);
    std::printf("float weights %.1f KB, packed file %.1f KB\n", double(stats.bytes_fp32()) / 1e3,
                double(std::filesystem::file_size(path)) / 1e3);
    std::filesystem::remove(path);

    // 3. Greedy continuation. A packed model rounds each token's activations to int8 by default
    //    (the fast path); float activations and bf16 tables are the exact option, which must give
    //    the float model's tokens (the same decoder with its float weights, infer::FloatLlama).
    infer::SamplingOptions greedy;
    greedy.temperature = 0;
    Rng r1(1), r2(1), r3(1);
    const std::vector<int32_t> prompt = {7, 8, 9, 10};
    const auto slow = infer::generate(infer::FloatLlama(model), prompt, 12, greedy, r1);
    const auto fast = loaded.generate(prompt, 12, greedy, r2);
    std::vector<int32_t> exact;
    {
        const kernels::SignActivationsScope float_activations(kernels::SignActivations::Float);
        exact = infer::PackedLlama(model, infer::TableFormat::Bf16).generate(prompt, 12, greedy, r3);
    }
    auto print = [&](const char* what, const std::vector<int32_t>& ids) {
        std::printf("%-40s 7 8 9 10 ->", what);
        for (std::size_t i = prompt.size(); i < ids.size(); ++i) std::printf(" %d", ids[i]);
        std::printf("\n");
    };
    print("float model", slow);
    print("packed, int8 activations (default)", fast);
    print("packed, float activations, bf16 tables", exact);
    std::printf("exact packed and float continuations %s; the default %s them\n", exact == slow ? "agree" : "DIFFER",
                fast == slow ? "agrees with" : "moved a near-tie away from");

    // 4. Speed where the weights no longer fit in cache: packed 1-bit vs dense float W_hat, the
    //    same decoder code, random weights of a trained model's scale.
    nn::LlamaConfig big = config;
    big.vocab_size = 8192;
    big.hidden_size = 512;
    big.intermediate_size = 1536;
    big.num_hidden_layers = 8;
    big.num_attention_heads = 8;
    big.num_key_value_heads = 8;
    big.max_position_embeddings = 128;
    Rng wr(9);
    const infer::PackedLlama packed_big(big, wr);
    const infer::DenseFbiDecoder dense_big(big, wr);
    auto tokens_per_second = [&](const auto& m) {
        infer::GenerationStats st;
        Rng r(3);
        m.generate({1, 2, 3, 4, 5, 6, 7, 8}, 33, greedy, r, {}, &st);
        return st.decode_tokens_per_second();
    };
    const double dense_tps = tokens_per_second(dense_big), packed_tps = tokens_per_second(packed_big);
    std::printf(
        "decode at hidden 512 x 8 layers: dense float %.1f MB %.0f tok/s, packed 1-bit %.1f MB %.0f tok/s (%.1fx)\n",
        double(dense_big.bytes()) / 1e6, dense_tps, double(packed_big.bytes()) / 1e6, packed_tps,
        packed_tps / dense_tps);
    return exact == slow ? 0 : 1;
}
