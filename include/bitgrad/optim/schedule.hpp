#pragma once
// Learning-rate schedule of the FBI-LLM recipe: linear warm-up from 0 to peak over warmup_steps,
// then cosine decay from peak to floor at total_steps, constant floor after.
//   step s (1-based, the optimizer step about to be taken):
//     s <= warmup:  lr = peak * s / warmup
//     else:         lr = floor + (peak - floor) * (1 + cos(pi * p)) / 2,  p = min(1, (s - warmup) / (total - warmup))
#include <algorithm>
#include <cmath>

#include "bitgrad/core/error.hpp"

namespace bitgrad::optim {

struct CosineSchedule {
    double peak = 3e-4, floor = 3e-5;
    int64_t warmup_steps = 2000, total_steps = 100000;

    double operator()(int64_t step) const {
        BITGRAD_CHECK(step >= 1, "CosineSchedule: step " << step << ", expected >= 1");
        if (warmup_steps > 0 && step <= warmup_steps) return peak * double(step) / double(warmup_steps);
        const int64_t decay_steps = std::max<int64_t>(1, total_steps - warmup_steps);
        const double p = std::min(1.0, double(step - warmup_steps) / double(decay_steps));
        return floor + (peak - floor) * 0.5 * (1.0 + std::cos(3.14159265358979323846 * p));
    }
};

}  // namespace bitgrad::optim
