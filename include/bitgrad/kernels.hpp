#pragma once
#include "bitgrad/kernels/attention.hpp"
#include "bitgrad/kernels/gemm.hpp"
