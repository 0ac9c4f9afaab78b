#pragma once
// bitgrad::Error: the one exception type of the library. Messages name the operation, the values
// involved and what was expected, e.g. "linear: x has shape [4, 7], expected last dim 8 (W [16, 8])".
#include <sstream>
#include <stdexcept>
#include <string>

namespace bitgrad {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace bitgrad

// BITGRAD_CHECK(cond, "op: x has shape " << s << ", expected ...") throws bitgrad::Error when cond is false.
// The message is only formatted on failure.
#define BITGRAD_CHECK(cond, msg)                             \
    do {                                                     \
        if (!(cond)) {                                       \
            std::ostringstream bitgrad_check_os_;            \
            bitgrad_check_os_ << msg;                        \
            throw ::bitgrad::Error(bitgrad_check_os_.str()); \
        }                                                    \
    } while (0)
