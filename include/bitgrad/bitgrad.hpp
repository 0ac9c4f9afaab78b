#pragma once
// bitgrad: header-only tensors, tape autograd and fully binarized (FBI-LLM) transformers.
// (The SentencePiece tokenizer, bitgrad/data/sentencepiece.hpp, is included separately: it links
// libsentencepiece.)
#include "bitgrad/autograd.hpp"
#include "bitgrad/core.hpp"
#include "bitgrad/data.hpp"
#include "bitgrad/eval.hpp"
#include "bitgrad/infer.hpp"
#include "bitgrad/io.hpp"
#include "bitgrad/kernels.hpp"
#include "bitgrad/nn.hpp"
#include "bitgrad/ops.hpp"
#include "bitgrad/optim.hpp"
#include "bitgrad/train.hpp"
