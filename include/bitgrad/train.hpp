#pragma once
#include "bitgrad/train/flip_rate.hpp"
#include "bitgrad/train/teacher.hpp"
#include "bitgrad/train/trainer.hpp"
