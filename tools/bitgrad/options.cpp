#include "options.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include <bitgrad/core/parallel.hpp>
#include <bitgrad/infer/packed_file.hpp>
#include <bitgrad/kernels/ste.hpp>

namespace bitgrad::cli {

Job& job() {
    static Job j;
    return j;
}

std::string read_text(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) throw UsageError("cannot read " + p.string());
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// The path named by --name, if it is what `is` accepts; else "--name PATH: <missing>".
template <class Is>
static fs::path checked_path(const cxxopts::ParseResult& r, const char* name, Is is, const char* missing) {
    const fs::path p = r[name].as<std::string>();
    std::error_code ec;
    if (!is(p, ec)) throw UsageError(std::string("--") + name + " " + p.string() + ": " + missing);
    return p;
}
fs::path existing_dir(const cxxopts::ParseResult& r, const char* name) {
    return checked_path(
        r, name, [](const fs::path& p, std::error_code& ec) { return fs::is_directory(p, ec); }, "no such directory");
}
fs::path existing_file(const cxxopts::ParseResult& r, const char* name) {
    return checked_path(
        r, name, [](const fs::path& p, std::error_code& ec) { return fs::is_regular_file(p, ec); }, "no such file");
}
fs::path existing_path(const cxxopts::ParseResult& r, const char* name) {
    return checked_path(
        r, name,
        [](const fs::path& p, std::error_code& ec) { return fs::is_regular_file(p, ec) || fs::is_directory(p, ec); },
        "no such file or directory");
}
fs::path output_dir(const cxxopts::ParseResult& r, const char* name) {
    return checked_path(
        r, name, [](const fs::path& p, std::error_code& ec) { return !fs::exists(p, ec) || fs::is_directory(p, ec); },
        "exists and is not a directory");
}

std::string or_list(const std::vector<std::string>& names) {
    std::string s;
    for (std::size_t i = 0; i < names.size(); ++i)
        s += (i == 0 ? "" : (i + 1 == names.size() ? " or " : ", ")) + names[i];
    return s;
}

void require(const cxxopts::ParseResult& r, const char* command, std::initializer_list<const char*> names) {
    std::vector<std::string> options;
    bool missing = false;
    for (const char* n : names) {
        options.push_back(std::string("--") + n);
        missing = missing || !r.count(n);
    }
    if (!missing) return;
    std::string list = or_list(options);
    if (const auto last_or = list.rfind(" or "); last_or != std::string::npos) list.replace(last_or, 4, " and ");
    throw UsageError(std::string(command) + " needs " + list);
}

// Every long option name of o, for "did you mean".
static std::vector<std::string> option_names(const cxxopts::Options& o) {
    std::vector<std::string> names;
    for (const auto& g : o.groups())
        for (const auto& d : o.group_help(g).options)
            for (const auto& l : d.l) names.push_back(l);
    return names;
}

// Levenshtein distance, for suggestions.
static std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
            diag = up;
        }
    }
    return row[b.size()];
}

std::string did_you_mean(const std::string& given, const std::vector<std::string>& candidates,
                         const std::string& prefix) {
    std::string best;
    std::size_t best_d = 3;
    for (const auto& c : candidates) {
        const std::size_t d = c.rfind(given, 0) == 0 && !given.empty() ? 1 : edit_distance(given, c);
        if (d < best_d) best_d = d, best = c;
    }
    return best.empty() ? "" : " (did you mean '" + prefix + best + "'?)";
}

cxxopts::ParseResult parse_options(cxxopts::Options& o, int argc, char** argv) {
    try {
        return o.parse(argc, argv);
    } catch (const cxxopts::exceptions::no_such_option& e) {
        const auto names = option_names(o);
        std::string given;
        for (int i = 1; i < argc; ++i) {
            std::string a = argv[i];
            if (a.rfind("--", 0) != 0) continue;
            a = a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2);
            if (std::find(names.begin(), names.end(), a) == names.end()) {
                given = a;
                break;
            }
        }
        throw UsageError(std::string(e.what()) + did_you_mean(given, names, "--") + "; see --help");
    } catch (const cxxopts::exceptions::incorrect_argument_type& e) {
        // The value is the argument after its option, or the part after '=' of --option=value.
        auto is_bad = [&](const std::string& value) {
            return std::string(cxxopts::exceptions::incorrect_argument_type(value).what()) == e.what();
        };
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            const auto eq = a.find('=');
            if (a.rfind("--", 0) == 0 && eq != std::string::npos && is_bad(a.substr(eq + 1)))
                throw UsageError(a.substr(0, eq) + " " + a.substr(eq + 1) + ": not a valid value (see --help)");
            if (i + 1 < argc && a.rfind("-", 0) == 0 && is_bad(argv[i + 1]))
                throw UsageError(a + " " + argv[i + 1] + ": not a valid value (see --help)");
        }
        throw UsageError(e.what());
    }
}

int max_threads() { return 4 * std::max(1, int(std::thread::hardware_concurrency())); }
void apply_threads(const cxxopts::ParseResult& r) {
    const int n = r["threads"].as<int>();
    if (n < 0) throw UsageError("--threads must be >= 0 (0: all cores), got " + std::to_string(n));
    if (n > max_threads())
        throw UsageError("--threads " + std::to_string(n) + ": at most " + std::to_string(max_threads()) +
                         " (4 x the " + std::to_string(std::thread::hardware_concurrency()) +
                         " hardware threads of this machine)");
    if (n > 0) set_num_threads(n);
}
void add_threads_option(cxxopts::Options& o) {
    o.add_options()("threads", "threads (0: OMP_NUM_THREADS, else all cores)",
                    cxxopts::value<int>()->default_value("0"));
}

std::optional<data::Tokenizer> find_tokenizer(const cxxopts::ParseResult& r, const fs::path& model, bool required) {
    std::error_code ec;
    if (r.count("tokenizer")) return data::Tokenizer(existing_file(r, "tokenizer").string());
    if (r.count("data")) return data::Tokenizer((existing_dir(r, "data") / "tokenizer.model").string());
    if (fs::is_regular_file(model, ec)) {  // a packed file (infer::is_packed_model)
        if (auto bytes = infer::load_packed_tokenizer(model.string()))
            return data::Tokenizer::from_bytes(*bytes, model.string() + " (tokenizer.model)");
    } else if (fs::is_regular_file(model / "tokenizer.model", ec)) {
        return data::Tokenizer((model / "tokenizer.model").string());
    }
    if (required)
        throw UsageError("no tokenizer: " + model.string() + " carries none; give --data DIR or --tokenizer FILE");
    return std::nullopt;
}

// --ste: the estimators' own table (ops/sign.hpp).
static EnumOption<Ste> ste_option() {
    EnumOption<Ste> o{"ste", {}};
    for (const auto& e : kSteNames) o.choices.emplace_back(e.name, e.ste);
    return o;
}

void add_model_options(cxxopts::Options& o) {
    o.add_options("model")("preset", "tiny, 130M, 1.3B, 7B, or custom (the size flags below)",
                           cxxopts::value<std::string>()->default_value("custom"))(
        "layers", "decoder layers", cxxopts::value<int64_t>()->default_value("4"))(
        "hidden", "hidden size", cxxopts::value<int64_t>()->default_value("128"))(
        "intermediate", "MLP size", cxxopts::value<int64_t>()->default_value("352"))(
        "heads", "attention heads", cxxopts::value<int64_t>()->default_value("4"))(
        "kv-heads", "key/value heads (GQA); 0: = heads", cxxopts::value<int64_t>()->default_value("0"))(
        "ste", "straight-through estimator: " + ste_option().names(),
        cxxopts::value<std::string>()->default_value(ste_name(Ste::Identity)));
}

nn::LlamaConfig model_config(const cxxopts::ParseResult& r, int64_t vocab, int64_t max_pos) {
    nn::LlamaConfig c;
    const std::string preset = r["preset"].as<std::string>();
    if (preset != "custom") {
        try {
            c = nn::LlamaConfig::preset(preset);
        } catch (const Error& e) { throw UsageError(std::string("--preset: ") + e.what()); }
    } else {
        c.num_hidden_layers = positive<int64_t>(r, "layers");
        c.hidden_size = positive<int64_t>(r, "hidden");
        c.intermediate_size = positive<int64_t>(r, "intermediate");
        c.num_attention_heads = positive<int64_t>(r, "heads");
        c.num_key_value_heads = r["kv-heads"].as<int64_t>() > 0 ? r["kv-heads"].as<int64_t>() : c.num_attention_heads;
    }
    if (vocab > 0) c.vocab_size = vocab;
    c.max_position_embeddings = std::max(max_pos, int64_t(16));
    c.ste = ste_option()(r);
    try {
        c.validate();
    } catch (const Error& e) { throw UsageError(e.what()); }
    return c;
}

}  // namespace bitgrad::cli
