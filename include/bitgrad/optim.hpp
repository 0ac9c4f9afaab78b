#pragma once
#include "bitgrad/optim/adamw.hpp"
#include "bitgrad/optim/schedule.hpp"
