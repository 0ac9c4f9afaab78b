#pragma once
#include "bitgrad/core/allocator.hpp"
#include "bitgrad/core/error.hpp"
#include "bitgrad/core/memory.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/rng.hpp"
#include "bitgrad/core/shape.hpp"
#include "bitgrad/core/tensor.hpp"
