#pragma once
// bitgrad: header-only tensors, tape autograd and fully binarized (FBI-LLM) transformers.
#include "bitgrad/autograd.hpp"
#include "bitgrad/core.hpp"
#include "bitgrad/kernels.hpp"
#include "bitgrad/nn.hpp"
#include "bitgrad/ops.hpp"
