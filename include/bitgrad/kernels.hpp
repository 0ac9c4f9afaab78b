#pragma once
#include "bitgrad/kernels/attention.hpp"
#include "bitgrad/kernels/exp.hpp"
#include "bitgrad/kernels/fbi.hpp"
#include "bitgrad/kernels/gemm.hpp"
#include "bitgrad/kernels/gemm_bf16.hpp"
#include "bitgrad/kernels/gemm_fp.hpp"
#include "bitgrad/kernels/softmax.hpp"
