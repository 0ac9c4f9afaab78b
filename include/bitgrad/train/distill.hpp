#pragma once
// One training step of FBI-LLM as a function: the teacher's logits (no gradient), the student's
// forward, the loss and the backward, with gradients accumulating into the student's parameters.
// The Trainer calls it; so do the benchmark and examples/06_distill.cpp, so a whole distillation is a short
// loop a reader can follow.
//
//   Loss::CE     cross-entropy with the next tokens                  (no teacher)
//   Loss::AD     soft cross-entropy to the teacher: -(1/N) sum_n sum_c p_T log q_S   (autoregressive
//                distillation, FBI-LLM's loss; p_T = softmax(teacher logits / tau))
//   Loss::Mixed  0.5 CE + 0.5 AD                                     (the reference's mixed option)
//
// A teacher is any callable from token ids [B, T] to its logits for the B*T rows (TeacherLogits:
// produced a block of rows at a time, so the [B*T, V] logits need not exist whole). llama_teacher
// adapts a bitgrad LLaMA, frozen_teacher the same model frozen in bf16 (infer::FrozenLlama); a cache
// of precomputed logits fits the same slot.
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "bitgrad/autograd/profile.hpp"
#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/precision.hpp"
#include "bitgrad/infer/frozen_llama.hpp"
#include "bitgrad/ops/lm_head_loss.hpp"

namespace bitgrad::train {

enum class Loss { CE, AD, Mixed };

// Switches without default: a new Loss is a -Wswitch warning in each.
inline const char* loss_name(Loss l) {
    switch (l) {
        case Loss::CE: return "ce";
        case Loss::AD: return "ad";
        case Loss::Mixed: return "mixed";
    }
    return "?";
}
// The weights of the two parts of the loss (spec: the mixed loss averages them).
inline std::pair<double, double> loss_weights(Loss l) {  // {cross-entropy, autoregressive distillation}
    switch (l) {
        case Loss::CE: return {1.0, 0.0};
        case Loss::AD: return {0.0, 1.0};
        case Loss::Mixed: return {0.5, 0.5};
    }
    return {1.0, 0.0};
}
inline std::optional<Loss> parse_loss(std::string_view s) {
    for (Loss l : {Loss::CE, Loss::AD, Loss::Mixed})
        if (s == loss_name(l)) return l;
    return std::nullopt;
}

template <class T>
using Teacher = std::function<TeacherLogits<T>(const Tensor<int32_t>& inputs)>;

// A bitgrad LLaMA (nn::LlamaForCausalLM) as a teacher: its final hidden states under NoGrad, then
// its lm_head applied block by block inside the loss. The model must outlive the callable.
template <class T, class Model>
Teacher<T> llama_teacher(const Model& model) {
    return [&model](const Tensor<int32_t>& inputs) {
        NoGrad no_grad;
        const Tensor<T> hidden = model.model.forward(inputs).value();
        return TeacherLogits<T>::from_hidden(hidden.reshape({-1, hidden.shape().last()}), model.lm_head.weight.value());
    };
}

// A FrozenLlama (weights in bf16) as a teacher: half the memory of the float model, the teacher of
// a bf16 run. The model must outlive the callable.
inline Teacher<float> frozen_teacher(const infer::FrozenLlama& model) {
    return [&model](const Tensor<int32_t>& inputs) {
        const Tensor<float> hidden = model.hidden_states(inputs);
        const int64_t N = hidden.dim(0), C = hidden.dim(1), V = model.config().vocab_size;
        return TeacherLogits<float>{N, V, [hidden, &model, C](int64_t r0, int64_t r1, float* out) {
                                        model.logits(hidden.data() + r0 * C, r1 - r0, out);
                                    }};
    };
}

struct StepOptions {
    Loss loss = Loss::CE;
    double temperature = 1.0;
    double loss_scale = 1.0;                // the backward seed: 1 / grad_accum, so micro-batches average
    Precision precision = Precision::FP32;  // of the matrix products (teacher, student, loss)
};

namespace detail {
inline void profile_phase(const char* name) {
    if (Profiler* p = bitgrad::detail::active_profiler()) p->phase(name);
}
}  // namespace detail

// inputs [B, T] token ids, labels [B*T] next tokens. Runs the teacher (unless Loss::CE), the
// student's forward and loss on a fresh tape, and backward with seed loss_scale: the gradients
// add into the student's parameters. Returns the loss (unscaled).
template <class T, class Student>
double distill_step(const Student& student, const Teacher<T>* teacher, const Tensor<int32_t>& inputs,
                    const Tensor<int32_t>& labels, const StepOptions& o) {
    BITGRAD_CHECK(o.loss == Loss::CE || (teacher && *teacher),
                  "distill_step: loss " << loss_name(o.loss) << " needs a teacher");
    PrecisionScope precision(o.precision);
    TeacherLogits<T> teacher_logits;
    if (o.loss != Loss::CE) {
        detail::profile_phase("teacher forward");
        teacher_logits = (*teacher)(inputs);
    }
    Tape tape;
    detail::profile_phase("student forward");
    const Var<T> hidden = student.model.forward(inputs);
    LossTargets<T> targets;
    targets.labels = labels;
    std::tie(targets.ce_weight, targets.ad_weight) = loss_weights(o.loss);
    targets.temperature = o.temperature;
    targets.teacher = o.loss == Loss::CE ? nullptr : &teacher_logits;
    targets.eager_weight_grad_scale = o.loss_scale;  // the backward below uses exactly this seed
    detail::profile_phase("loss (lm_head fused)");
    const Var<T> loss = lm_head_loss(hidden, student.lm_head.weight, targets);
    detail::profile_phase("backward");
    backward(loss, Tensor<T>::scalar(T(o.loss_scale)));
    return double(loss.item());
}

}  // namespace bitgrad::train
