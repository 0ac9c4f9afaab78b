#pragma once
#include "bitgrad/io/checkpoint.hpp"
#include "bitgrad/io/config_json.hpp"
#include "bitgrad/io/hf_checkpoint.hpp"
#include "bitgrad/io/pickle.hpp"
#include "bitgrad/io/safetensors.hpp"
#include "bitgrad/io/torch_checkpoint.hpp"
#include "bitgrad/io/zip.hpp"
