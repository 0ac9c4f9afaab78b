#pragma once
#include "bitgrad/eval/perplexity.hpp"
