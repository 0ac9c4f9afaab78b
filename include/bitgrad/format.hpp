#pragma once
// File formats, model-free: safetensors, PyTorch's zip checkpoints and the pickle inside them.
#include "bitgrad/format/pickle.hpp"
#include "bitgrad/format/safetensors.hpp"
#include "bitgrad/format/torch_checkpoint.hpp"
#include "bitgrad/format/zip.hpp"
