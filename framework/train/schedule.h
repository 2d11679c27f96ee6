// Learning-rate schedules: linear warmup, then cosine decay to min_lr (cosine),
// warmup-stable-decay with a linear cooldown over the last 20% (wsd), or flat.
#pragma once

#include <cstdint>

#include "config/run_config.h"

namespace attnlab::train {

// The learning rate for optimizer step `step` (0-based) of `total_steps`.
double learning_rate(const OptimConfig& optim, int64_t step, int64_t total_steps);

}  // namespace attnlab::train
