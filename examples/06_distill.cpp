// 06_distill: a whole FBI-LLM distillation in one file.
//
// FBI-LLM trains a 1-bit student from random weights on the next-token distributions of a
// full-precision teacher (autoregressive distillation, AD):
//     loss_AD = -(1/N) sum_n sum_c p_T(c | x_<=n) log q_S(c | x_<=n)
// where plain cross-entropy (CE) has a one-hot p: the one next token that was sampled. A sampled
// token is a noisy estimate of the distribution; the teacher hands the student the distribution.
// This program shows the difference on a text source whose true distribution is known:
//   1. a Markov chain over 32 tokens: each token is followed by one of 4 successors with
//      probabilities 0.5, 0.25, 0.15, 0.10. No model can do better than its entropy per token.
//   2. a full-precision teacher trained on it with CE,
//   3. two identical 1-bit students (FBI-Linear layers), trained for the same few steps on the same
//      batches: one with CE on the sampled next tokens, one with AD on the teacher's distributions.
//      train::distill_step does each step (teacher, student forward, fused lm_head + loss, backward),
//      as it does inside bitgrad's Trainer and the `bitgrad distill` command.
//   4. all three measured on held-out sequences, against the source's entropy.
//   5. the AD student saved as a model directory and loaded back, as `bitgrad distill` saves its
//      final model and `bitgrad eval` loads it.
#include <bitgrad/bitgrad.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <utility>

using namespace bitgrad;

constexpr int64_t kVocab = 32;
constexpr double kSuccessorProbs[4] = {0.5, 0.25, 0.15, 0.10};

struct MarkovSource {
    int32_t successor[kVocab][4];

    explicit MarkovSource(Rng& rng) {
        for (auto& next : successor)
            for (int k = 0; k < 4; ++k) {
                bool repeated = true;
                while (repeated) {  // 4 distinct successors, so the entropy below is exact
                    next[k] = int32_t(rng.uniform_int(kVocab));
                    repeated = false;
                    for (int j = 0; j < k; ++j) repeated |= next[j] == next[k];
                }
            }
    }
    // The best achievable loss: the entropy of the next token, the same after every token.
    static double entropy() {
        double h = 0;
        for (double p : kSuccessorProbs) h -= p * std::log(p);
        return h;
    }
    // B sequences of T + 1 tokens as inputs [B, T] and labels [B * T] (each input's next token).
    std::pair<Tensor<int32_t>, Tensor<int32_t>> batch(int64_t B, int64_t T, Rng& rng) const {
        Tensor<int32_t> inputs({B, T}), labels({B * T});
        for (int64_t b = 0; b < B; ++b) {
            int32_t token = int32_t(rng.uniform_int(kVocab));
            for (int64_t t = 0; t < T; ++t) {
                inputs[b * T + t] = token;
                double u = rng.uniform();
                int k = 0;
                while (k < 3 && u >= kSuccessorProbs[k]) u -= kSuccessorProbs[k++];
                token = successor[token][k];
                labels[b * T + t] = token;
            }
        }
        return {inputs, labels};
    }
};

// AdamW with a cosine schedule; every step is one train::distill_step on a fresh batch.
template <class Model>
void train_model(Model& model, const train::Teacher<float>* teacher, train::Loss loss, int steps,
                 const MarkovSource& source, Rng& data_rng) {
    optim::AdamW<float> adamw(optim::param_groups(model.named_parameters(), /*weight_decay=*/0.0),
                              optim::AdamWOptions{});
    const optim::CosineSchedule lr{/*peak=*/3e-3, /*floor=*/3e-4, /*warmup_steps=*/10, /*total_steps=*/steps};
    train::StepOptions options;
    options.loss = loss;
    for (int step = 1; step <= steps; ++step) {
        const auto [inputs, labels] = source.batch(8, 32, data_rng);
        train::distill_step<float>(model, teacher, inputs, labels, options);  // gradients add into the parameters
        adamw.step(lr(step));
        model.clear_grad();
    }
}

// Mean cross-entropy per token (nats) on held-out sequences.
template <class Model>
double held_out_loss(const Model& model, const Tensor<int32_t>& inputs, const Tensor<int32_t>& labels) {
    NoGrad no_grad;
    return double(cross_entropy(reshape(model.forward(inputs), Shape{inputs.numel(), kVocab}), labels).item());
}

int main() {
    Rng rng(2024);
    const MarkovSource source(rng);
    const auto [test_inputs, test_labels] = source.batch(64, 32, rng);

    nn::LlamaConfig config;
    config.vocab_size = kVocab;
    config.hidden_size = 64;
    config.intermediate_size = 128;
    config.num_hidden_layers = 2;
    config.num_attention_heads = 4;
    config.num_key_value_heads = 4;
    config.max_position_embeddings = 32;

    // The teacher: full precision, plain CE, many steps.
    nn::DenseLlama<float> teacher(config, rng);
    Rng teacher_data(1);
    train_model(teacher, nullptr, train::Loss::CE, 300, source, teacher_data);
    const train::Teacher<float> teacher_logits = train::llama_teacher<float>(teacher);  // token ids -> logits

    // Two students: the same initial weights and the same batches, a sixth of the teacher's steps.
    const int student_steps = 50;
    Rng init_ce(7), init_ad(7), data_ce(2), data_ad(2);
    nn::FbiLlama<float> student_ce(config, init_ce), student_ad(config, init_ad);
    train_model(student_ce, nullptr, train::Loss::CE, student_steps, source, data_ce);
    train_model(student_ad, &teacher_logits, train::Loss::AD, student_steps, source, data_ad);

    const double best = MarkovSource::entropy();
    const double t = held_out_loss(teacher, test_inputs, test_labels),
                 ce = held_out_loss(student_ce, test_inputs, test_labels),
                 ad = held_out_loss(student_ad, test_inputs, test_labels);
    std::printf("held-out loss per token (nats); the source's entropy %.4f is the floor\n", best);
    std::printf("  teacher    full precision, CE, 300 steps    %.4f  (+%.4f)\n", t, t - best);
    std::printf("  student    1-bit, CE, %d steps              %.4f  (+%.4f)\n", student_steps, ce, ce - best);
    std::printf("  student    1-bit, AD, %d steps              %.4f  (+%.4f)\n", student_steps, ad, ad - best);
    std::printf("distillation %s: the AD student's excess loss is %.2fx the CE student's\n",
                ad < ce ? "helped" : "did not help", (ad - best) / (ce - best));

    // Save the student (config.json + model.safetensors) and load it into a new model: the config
    // first, since it says which model to build, then the weights, checked name by name and shape
    // by shape against that model.
    const std::filesystem::path dir = std::filesystem::temp_directory_path() / "bitgrad-06-student";
    io::save_model(dir, student_ad, student_ad.config);
    const nn::LlamaConfig saved_config = io::load_config(dir / "config.json");
    Rng unused(0);  // the constructor draws initial weights; loading replaces every one
    nn::FbiLlama<float> reloaded(saved_config, unused);
    io::load_hf_weights(dir, reloaded, saved_config.tie_word_embeddings);
    const double again = held_out_loss(reloaded, test_inputs, test_labels);
    std::filesystem::remove_all(dir);
    std::printf("saved and reloaded the AD student: held-out loss %.4f, %s\n", again,
                again == ad ? "bit for bit the same" : "DIFFERENT");
    return again == ad ? 0 : 1;
}
