#pragma once
#include "bitgrad/infer/sample.hpp"
