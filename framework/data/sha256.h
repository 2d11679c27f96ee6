// SHA-256 (FIPS 180-4), for the content hashes a run file records: the
// prepared corpus and the tokenizer's saved model, so a reader can tell
// exactly which bytes a run was trained and evaluated on.
#pragma once

#include <string>
#include <string_view>

namespace attnlab::data {

// Lower-case hex digest of `bytes`.
std::string sha256_hex(std::string_view bytes);

}  // namespace attnlab::data
