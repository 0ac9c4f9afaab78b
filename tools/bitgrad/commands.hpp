#pragma once
// The commands of the bitgrad program: each file defines its options and the function that runs
// them (after --help, which main handles). main.cpp lists them in its command table.
#include <cxxopts.hpp>

namespace bitgrad::cli {

#define BITGRAD_CLI_COMMAND(name)      \
    cxxopts::Options name##_options(); \
    int run_##name(const cxxopts::ParseResult& r);
BITGRAD_CLI_COMMAND(prepare)
BITGRAD_CLI_COMMAND(train)
BITGRAD_CLI_COMMAND(distill)
BITGRAD_CLI_COMMAND(eval)
BITGRAD_CLI_COMMAND(zeroshot)
BITGRAD_CLI_COMMAND(pack)
BITGRAD_CLI_COMMAND(generate)
BITGRAD_CLI_COMMAND(info)
BITGRAD_CLI_COMMAND(export)
BITGRAD_CLI_COMMAND(convert)
#undef BITGRAD_CLI_COMMAND

}  // namespace bitgrad::cli
