#pragma once
#include "bitgrad/eval/perplexity.hpp"
#include "bitgrad/eval/unigram.hpp"
