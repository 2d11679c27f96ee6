// Reading typed values out of scalar text (YAML 1.2 core schema, plus `_`
// digit separators), and the nearest-name search behind "did you mean".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace attnlab::config {

// "1_000" -> 1000; nullopt unless the whole text is an integer in range.
std::optional<int64_t> parse_int(const std::string& text);
// Decimals, exponents, inf/.inf/-inf, nan/.nan; integers too.
std::optional<double> parse_float(const std::string& text);
// true/True/TRUE/false/False/FALSE.
std::optional<bool> parse_bool(const std::string& text);
// null/Null/NULL/~ or empty.
bool is_null_text(const std::string& text);
// Whether unquoted text would be read as a number, bool or null.
bool plain_reads_as_non_string(const std::string& text);

// Edit distance (insert, delete, substitute, transpose).
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate closest to `name`, if it is close enough to be a likely typo.
std::optional<std::string> nearest(const std::string& name, const std::vector<std::string>& candidates);
// " (did you mean 'x'?)" or "".
std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace attnlab::config
