#pragma once
#include "bitgrad/autograd/gradcheck.hpp"
#include "bitgrad/autograd/parameter.hpp"
#include "bitgrad/autograd/profile.hpp"
#include "bitgrad/autograd/tape.hpp"
#include "bitgrad/autograd/var.hpp"
