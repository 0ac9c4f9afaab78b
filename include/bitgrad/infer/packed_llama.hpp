#pragma once
// The trained FBI-LLM student for inference: every binarized layer as packed sign bits, a KV cache,
// prefill and decode. An instantiation of the one decoder (infer/decoder.hpp):
//
//   infer::PackedLlama packed(student);                       // from a trained nn::FbiLlama<float>
//   infer::KvCache cache = packed.new_cache(512);             // room for 512 positions, in the model's format
//   std::vector<float> logits(V);
//   packed.forward(prompt.data(), n, cache, logits.data());   // prefill: logits of the last token
//   packed.forward(&next, 1, cache, logits.data());           // decode: one token at a time
//   infer::generate(packed, prompt, 60, sampling, rng);       // sampled, streamed (infer/causal_lm.hpp)
//
// What is stored, per FBI layer (W [out, in], alpha and beta [in]): infer::PackedFbiLinear
// (infer/linear.hpp), the sign bits of W at 1 bit per weight (layout in kernels/sign_matmul.hpp) and
// alpha, beta rounded to fp16; for the rest of the model the embedding and lm_head as TokenTables
// (int8 with a scale per row by default, or bf16: token_table.hpp), the RMSNorm weights in float.
// The layer computes the folded identity (never W_hat):
//   y = S (alpha * x) + (beta . x),     S = sign(W) in {+1, -1}
// By default each token's activations are rounded to int8 first (kernels/sign_matmul_q8.hpp) and
// the KV cache holds fp16 (infer/kv_cache.hpp), the fast path; docs/inference.md measures its cost
// and that of the int8 tables. With float
// activations (kernels::SignActivationsScope) and bf16 tables, the exact option, results differ
// from the float model only by the fp16 rounding of alpha and beta, the bf16 rounding of the
// embedding and lm_head, and the order of float sums (tests/infer/ state the tolerances).
//
// DenseFbiDecoder is the same decoder with W_hat in float (FloatLinear): the baseline the bench
// compares with (same code, same cache, only the weights' storage differs).
#include "bitgrad/infer/decoder.hpp"

namespace bitgrad::infer {

using PackedLlama = Decoder<PackedFbiLinear>;
using DenseFbiDecoder = Decoder<FloatLinear>;

}  // namespace bitgrad::infer
