#pragma once
#include "bitgrad/nn/config.hpp"
#include "bitgrad/nn/layers.hpp"
#include "bitgrad/nn/linear.hpp"
#include "bitgrad/nn/llama.hpp"
#include "bitgrad/nn/module.hpp"
#include "bitgrad/nn/summary.hpp"
