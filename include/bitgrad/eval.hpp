#pragma once
#include "bitgrad/eval/mc_tasks.hpp"
#include "bitgrad/eval/multiple_choice.hpp"
#include "bitgrad/eval/perplexity.hpp"
#include "bitgrad/eval/py_string.hpp"
#include "bitgrad/eval/unigram.hpp"
