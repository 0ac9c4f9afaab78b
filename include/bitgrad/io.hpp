#pragma once
// Models to and from files: config.json, Hugging Face checkpoints, training checkpoints.
#include "bitgrad/io/checkpoint.hpp"
#include "bitgrad/io/config_json.hpp"
#include "bitgrad/io/hf_checkpoint.hpp"
#include "bitgrad/io/hf_model.hpp"
#include "bitgrad/io/load_model.hpp"
