#pragma once
#include "bitgrad/io/atomic_file.hpp"
#include "bitgrad/io/checkpoint.hpp"
#include "bitgrad/io/config_json.hpp"
#include "bitgrad/io/json.hpp"
#include "bitgrad/io/mapped_file.hpp"
#include "bitgrad/io/safetensors.hpp"
