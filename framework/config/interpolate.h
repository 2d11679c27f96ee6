// Interpolation: ${a.b} (absolute), ${.x} / ${..x} (relative to the key's own
// map), ${env:VAR,default} (also oc.env), and ${div:a,b} (exact integer
// division, for derived shapes such as head_dim = d_model / n_heads).
#pragma once

#include <vector>

#include "config/node.h"
#include "core/error.h"

namespace attnlab::config {

// Resolves every interpolation in `root` in place. A reference to a missing
// key, an unset `???`, a cycle or a failing resolver appends a diagnostic
// naming the key, its origin and the chain of references; the key is left as
// it was.
void interpolate(Node& root, std::vector<Diagnostic>& problems);

}  // namespace attnlab::config
