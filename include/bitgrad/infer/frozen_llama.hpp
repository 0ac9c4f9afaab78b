#pragma once
// FrozenLlama: a full-precision LLaMA for inference only, its matrices frozen
// in bf16 (half the memory of float: 268 MB instead of 537 MB at the 130M
// shape), norms in float. It is the teacher of a bf16 distillation run: no
// tape, no gradients. An instantiation of the one decoder (infer/decoder.hpp)
// with Bf16Linear layers and bf16 token tables:
//
//   infer::FrozenLlama teacher(dense_model);          // converts a trained
//   nn::DenseLlama<float> Tensor<float> h = teacher.hidden_states(ids);      //
//   [B*T, C], after the final norm teacher.logits(h.data(), rows, out); // out
//   [rows, V] = h lm_head^T auto big = FrozenLlama::load(io::HfCheckpoint(dir),
//   config);  // straight from a checkpoint's files
//
// Every product runs in kernels::gemm_bf16 with the bf16 weight as one operand
// (the lm_head's too): the same numbers as the nn model with its weights
// rounded to bf16 under Precision::BF16 (tested), up to the order of float
// sums. Attention, norms, RoPE and SwiGLU run in float. Loading keeps a BF16
// checkpoint's bits (F32 / F64 / F16 values are rounded to bf16), one tensor at
// a time.
#include "bitgrad/infer/decoder.hpp"

namespace bitgrad::infer {

using FrozenLlama = Decoder<Bf16Linear>;

}  // namespace bitgrad::infer
