// The attention variants, in the order `attnlab kv` prints them: the one list
// both halves of the registry are built from. A variant has a configuration
// half (config/attention/<kind>.cpp: its keys, defaults, ranges and rules,
// without LibTorch, so the fuzz build parses every variant's config) and a
// model half (model/attention/<kind>.cpp: the layer, its cache layout,
// parameter count and rows in `attnlab kv`). Adding a variant: those two
// files, its name here, and configs/attention/<kind>.yaml.
#pragma once

#define ATTNLAB_ATTENTION_VARIANTS(X) X(mha) X(gqa) X(mqa) X(mla) X(gta) X(gla) X(tpa)
