#pragma once
// What the commands of the bitgrad program share: usage errors (exit 2), this process's place in an
// MPI job, checks of paths and numbers named on the command line, enum options whose help text and
// accepted values come from one list, the thread count and the tokenizer of a model.
#include <cxxopts.hpp>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <bitgrad/data/sentencepiece.hpp>
#include <bitgrad/kernels/sign_matmul_q8.hpp>
#include <bitgrad/nn/config.hpp>
#include <bitgrad/train/data_parallel.hpp>

namespace bitgrad::cli {

namespace fs = std::filesystem;

// A bad command line: main prints it after "bitgrad <command>: " and exits 2, before any work.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// This process's place in an MPI job (`mpirun -np N bitgrad train|distill ...`): rank 0 of 1
// without MPI. Only rank 0 prints progress and writes files.
struct Job {
    train::DataParallel data_parallel;
    bool lead() const { return data_parallel.rank == 0; }
};
Job& job();

std::string read_text(const fs::path& p);

// Paths named on the command line are checked before any work: a missing input or an output that
// is not a directory is a usage error (exit 2), not a failure half-way through.
fs::path existing_dir(const cxxopts::ParseResult& r, const char* name);
fs::path existing_file(const cxxopts::ParseResult& r, const char* name);
fs::path existing_path(const cxxopts::ParseResult& r, const char* name);  // a file or a directory
fs::path output_dir(const cxxopts::ParseResult& r, const char* name);

// "<command> needs --a, --b and --c" unless every one of names is given.
void require(const cxxopts::ParseResult& r, const char* command, std::initializer_list<const char*> names);

template <class V>
V positive(const cxxopts::ParseResult& r, const char* name) {
    const V v = r[name].as<V>();
    if (!(v > 0)) throw UsageError(std::string("--") + name + " must be > 0, got " + std::to_string(v));
    return v;
}
template <class V>
V non_negative(const cxxopts::ParseResult& r, const char* name) {
    const V v = r[name].as<V>();
    if (!(v >= 0)) throw UsageError(std::string("--") + name + " must be >= 0, got " + std::to_string(v));
    return v;
}

// "a", "a or b", "a, b or c": the accepted values in help texts and refusals.
std::string or_list(const std::vector<std::string>& names);

// An option whose values are a closed set. The names come from the library's own name function, so
// the help text, the values accepted and the refusal ("--tables fp8: expected bf16 or int8") are
// one list; `parse` is the library's parser where it accepts more spellings than the names.
template <class E>
struct EnumOption {
    const char* option;
    std::vector<std::pair<std::string, E>> choices;
    std::function<std::optional<E>(std::string_view)> parse = nullptr;

    std::string names() const {
        std::vector<std::string> n;
        for (const auto& c : choices) n.push_back(c.first);
        return or_list(n);
    }
    E operator()(const cxxopts::ParseResult& r) const {
        const std::string given = r[option].as<std::string>();
        if (parse) {
            if (const auto e = parse(given)) return *e;
        } else {
            for (const auto& c : choices)
                if (c.first == given) return c.second;
        }
        throw UsageError(std::string("--") + option + " " + given + ": expected " + names());
    }
};
template <class E, class Name>
EnumOption<E> enum_option(const char* option, std::initializer_list<E> values, Name name) {
    EnumOption<E> o{option, {}};
    for (E v : values) o.choices.emplace_back(name(v), v);
    return o;
}

// --activations of a packed model (eval, zeroshot, generate): what its 1-bit layers round
// activations to.
inline const EnumOption<kernels::SignActivations> kActivations = enum_option(
    "activations", {kernels::SignActivations::Float, kernels::SignActivations::Int8}, kernels::sign_activations_name);

// " (did you mean 'x'?)" for the closest of candidates within two edits (or a prefix), else "".
std::string did_you_mean(const std::string& given, const std::vector<std::string>& candidates,
                         const std::string& prefix = "");

// o.parse with errors that name the option: an unknown option gets a suggestion, a value that does
// not parse names its option (cxxopts only says "Argument 'abc' failed to parse").
cxxopts::ParseResult parse_options(cxxopts::Options& o, int argc, char** argv);

// --threads N (0: OpenMP's default, OMP_NUM_THREADS or every core). More threads than a few per core
// only wait for each other, and tens of thousands exhaust the process's stacks: bounded.
int max_threads();
void apply_threads(const cxxopts::ParseResult& r);
void add_threads_option(cxxopts::Options& o);

// The tokenizer for a model: --tokenizer, else --data's, else the one a packed file carries, else a
// model directory's tokenizer.model (train and distill copy it into final/).
std::optional<data::Tokenizer> find_tokenizer(const cxxopts::ParseResult& r, const fs::path& model, bool required);

// The model shape options of train, distill and info (--preset or the size flags, --ste) and the
// config they make; vocab > 0 replaces the preset's, max_pos (at least 16) is the context.
void add_model_options(cxxopts::Options& o);
nn::LlamaConfig model_config(const cxxopts::ParseResult& r, int64_t vocab, int64_t max_pos);

}  // namespace bitgrad::cli
