// bitgrad: the command-line program. `bitgrad` or `bitgrad --help` lists the commands (the table
// below), `bitgrad <command> --help` shows a command's options, `bitgrad --version` the build.
// Bad options exit with code 2 before any work; library errors exit with code 1.
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <bitgrad/core/error.hpp>
#include <bitgrad/core/parallel.hpp>
#include <bitgrad/kernels/sign_matmul.hpp>

#include "commands.hpp"
#include "options.hpp"
#ifdef BITGRAD_WITH_MPI
#include <bitgrad/dist/mpi.hpp>
#endif

namespace bitgrad::cli {
namespace {

// The commands: name, one line of help, its options and the function that runs it.
struct Command {
    const char* name;
    const char* summary;
    cxxopts::Options (*options)();
    int (*run)(const cxxopts::ParseResult&);
    std::vector<std::string> help_groups = {};  // the option groups --help shows, in order (default: all)
};
const Command kCommands[] = {
    {"prepare", "text -> tokenizer + train/validation token shards", prepare_options, run_prepare},
    {"train", "train a model with cross-entropy (full precision, or --binarized FBI-LLM)", train_options, run_train},
    {"distill",
     "distill a binarized student from a full-precision teacher (AD loss)",
     distill_options,
     run_distill,
     {"", "model", "distillation"}},
    {"eval", "perplexity and bits per byte (validation shard, or a text with FBI-LLM's protocol)", eval_options,
     run_eval},
    {"zeroshot", "multiple-choice accuracy as lm-evaluation-harness 0.4.2 scores it", zeroshot_options, run_zeroshot},
    {"pack", "a trained FBI-LLM -> one packed file (1 bit per binarized weight, its tokenizer)", pack_options,
     run_pack},
    {"generate", "sample text from a model directory or a packed file", generate_options, run_generate},
    {"info", "model summary: parameters, 1-bit share, storage", info_options, run_info},
    {"export", "a model in Hugging Face's layout (safetensors / pytorch_model.bin)", export_options, run_export},
    {"convert", "a PyTorch pytorch_model.bin -> model.safetensors, running no pickle code", convert_options,
     run_convert},
};

std::string usage() {
    std::string u = "usage: bitgrad <command> [options]   (bitgrad <command> --help for its options)\n\ncommands:\n";
    for (const auto& c : kCommands) {
        char line[160];
        std::snprintf(line, sizeof line, "  %-9s %s\n", c.name, c.summary);
        u += line;
    }
    return u + "\n  --version  print the version and build\n  --help     this list\n";
}

std::string version() {
    std::string v = std::string("bitgrad ") + BITGRAD_VERSION + " (";
#ifdef BITGRAD_USE_BLAS
    v += "OpenBLAS GEMM";
#else
    v += "Eigen GEMM";
#endif
#ifdef BITGRAD_WITH_MPI
    v += ", MPI";
#endif
    v += ", sign kernel " + std::string(kernels::sign_kernel_name(kernels::sign_kernel())) + ", " +
         std::to_string(std::thread::hardware_concurrency()) + " hardware threads)";
    return v;
}

// Parses the command's options; --help prints them and runs nothing.
int run(const Command& command, int argc, char** argv) {
    cxxopts::Options o = command.options();
    const cxxopts::ParseResult r = parse_options(o, argc, argv);
    if (r.count("help")) {
        std::cout << o.help(command.help_groups) << "\n";
        return 0;
    }
    return command.run(r);
}

}  // namespace
}  // namespace bitgrad::cli

int main(int argc, char** argv) {
    using namespace bitgrad;
    using namespace bitgrad::cli;
#ifdef BITGRAD_WITH_MPI
    // MPI only under mpirun (or another MPI launcher): a plain run initialising MPI would become a
    // singleton with an orted daemon of its own. A rank that fails ends the whole job (MPI_Abort),
    // so no rank is left waiting in a collective for it.
    std::optional<dist::MpiSession> mpi;
    if (dist::launched_by_mpi()) {
        mpi.emplace(argc, argv);
        job().data_parallel = dist::mpi_data_parallel();
    }
    auto fail = [&](const std::string& message) {
        if (mpi && mpi->size() > 1) mpi->abort(message);
    };
#else
    auto fail = [](const std::string&) {};
#endif
    if (argc < 2) {
        std::fprintf(stderr, "%s", usage().c_str());
        return 2;
    }
    const std::string cmd = argv[1];
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
        std::printf("%s", usage().c_str());
        return 0;
    }
    if (cmd == "--version") {
        std::printf("%s\n", version().c_str());
        return 0;
    }
    // OMP_NUM_THREADS is bounded like --threads: tens of thousands of threads exhaust the stacks.
    if (num_threads() > max_threads()) {
        std::fprintf(stderr, "warning: OMP_NUM_THREADS=%d is more than %d (4 x the hardware threads); using %d\n",
                     num_threads(), max_threads(), max_threads());
        set_num_threads(max_threads());
    }
    const Command* command = nullptr;
    for (const auto& c : kCommands)
        if (cmd == c.name) command = &c;
    if (!command) {
        std::vector<std::string> names;
        for (const auto& c : kCommands) names.push_back(c.name);
        std::fprintf(stderr, "bitgrad: unknown command '%s'%s\n\n%s", cmd.c_str(), did_you_mean(cmd, names).c_str(),
                     usage().c_str());
        return 2;
    }
    try {
        return run(*command, argc - 1, argv + 1);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "bitgrad %s: %s\n", cmd.c_str(), e.what());
        return 2;
    } catch (const cxxopts::exceptions::exception& e) {
        std::fprintf(stderr, "bitgrad %s: %s\n", cmd.c_str(), e.what());
        return 2;
    } catch (const Error& e) {
        fail(std::string("bitgrad ") + cmd + ": error: " + e.what());
        std::fprintf(stderr, "bitgrad %s: error: %s\n", cmd.c_str(), e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        fail("bitgrad " + cmd + ": error: out of memory");
        std::fprintf(
            stderr, "bitgrad %s: error: out of memory (a size check should have caught this first: please report it)\n",
            cmd.c_str());
        return 1;
    } catch (const std::exception& e) {
        fail("bitgrad " + cmd + ": internal error: " + e.what());
        // Last resort only: every expected failure is a bitgrad::Error naming the file and field.
        std::fprintf(stderr, "bitgrad %s: internal error: %s (please report it)\n", cmd.c_str(), e.what());
        return 1;
    }
}
