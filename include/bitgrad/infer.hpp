#pragma once
#include "bitgrad/infer/frozen_llama.hpp"
#include "bitgrad/infer/sample.hpp"
