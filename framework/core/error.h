// Errors that attnlab raises. A UserError is something the user can fix (a bad
// key, a missing file): the command line prints it without a backtrace and exits
// with code 2. Anything else is a bug or an environment failure (exit code 1).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace attnlab {

inline constexpr int kExitUserError = 2;

// One problem with the user's input: which key, where it came from, what was wrong.
struct Diagnostic {
  std::string key;      // full dotted key ("model.n_heads"), or empty
  std::string origin;   // "configs/model/tiny.yaml:3:10", "override #2 'model.x=1'", ...
  std::string message;  // what was expected, and a did-you-mean where one exists

  std::string to_string() const;
};

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Raised for input the user can correct. Holds every problem found, so that a
// user fixing a config sees all of them at once.
class UserError : public Error {
 public:
  explicit UserError(std::string message);
  explicit UserError(std::vector<Diagnostic> diagnostics);

  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

 private:
  std::vector<Diagnostic> diagnostics_;
};

// Shorthand for a single-diagnostic user error.
[[noreturn]] void throw_user_error(std::string key, std::string origin, std::string message);

}  // namespace attnlab
