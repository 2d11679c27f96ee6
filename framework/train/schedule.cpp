// Learning-rate schedules.
#include "train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace attnlab::train {

double learning_rate(const OptimConfig& optim, int64_t step, int64_t total_steps) {
  const double peak = optim.lr;
  if (optim.warmup_steps > 0 && step < optim.warmup_steps) {
    return peak * static_cast<double>(step + 1) / static_cast<double>(optim.warmup_steps);
  }
  if (optim.schedule == "constant") return peak;
  const int64_t decay_steps = std::max<int64_t>(1, total_steps - optim.warmup_steps);
  const double progress =
      std::clamp(static_cast<double>(step - optim.warmup_steps) / static_cast<double>(decay_steps), 0.0, 1.0);
  if (optim.schedule == "wsd") {
    // Stable at the peak, then a linear cooldown over the final 20% of training.
    constexpr double kCooldown = 0.2;
    if (progress < 1.0 - kCooldown) return peak;
    return optim.min_lr + (peak - optim.min_lr) * (1.0 - progress) / kCooldown;
  }
  // cosine
  return optim.min_lr + 0.5 * (peak - optim.min_lr) * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace attnlab::train
