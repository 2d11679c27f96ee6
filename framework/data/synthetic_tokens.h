// The reserved token ids of the passkey task, shared by the generator
// (data/synthetic.h) and the config rules (which do not link LibTorch code).
#pragma once

#include <cstdint>

namespace attnlab::data {

inline constexpr int64_t kPasskeyMarker = 10;       // precedes the hidden key; digits are 0..9
inline constexpr int64_t kPasskeyQuery = 11;        // precedes the answer at the end
inline constexpr int64_t kPasskeyFillerStart = 12;  // filler tokens are [12, vocab_size)

}  // namespace attnlab::data
