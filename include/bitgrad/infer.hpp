#pragma once
#include "bitgrad/infer/frozen_llama.hpp"
#include "bitgrad/infer/packed_file.hpp"
#include "bitgrad/infer/packed_llama.hpp"
#include "bitgrad/infer/sample.hpp"
#include "bitgrad/infer/token_table.hpp"
