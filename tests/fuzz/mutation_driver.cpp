// Seeded mutation driver: main() for one fuzz target (a *.fuzz.cpp defining LLVMFuzzerTestOneInput),
// for builds without clang's libFuzzer and for the bounded ctest runs. It has no coverage feedback;
// instead its mutations (mutator.hpp) know the formats a little.
//
//   fuzz_<reader> [options] CORPUS_DIR_OR_FILE...
//     --seed N        the mutation stream (default 1): the same seed and corpus give the same inputs
//     --seconds S     stop after S seconds (default 10, 0 = no limit); env BITGRAD_FUZZ_SECONDS overrides
//     --iterations N  stop after N inputs, corpus entries included (default 0 = no limit); a crash
//                     reported at iteration I comes back with --seed S --iterations I and the same corpus
//     --timeout S     an input running longer than S seconds is reported as a hang (default 10)
//     --max-len N     longest input in bytes (default 1 MiB)
//     --crash-dir D   where a failing input is saved (default: the working directory)
//     --replay        run each file given once, unmutated, and stop (to reproduce a saved crash)
// Exit 0 when nothing escaped; otherwise 1, naming the seed, the iteration and the saved input.
#include <cxxabi.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include "mutator.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size);
// Present when linked with ASan/UBSan: lets us save the input when a sanitizer ends the process.
extern "C" __attribute__((weak)) void __sanitizer_set_death_callback(void (*callback)(void));

// GCC's UBSan is a runtime of its own that never calls ASan's death callback: make it abort, so the
// SIGABRT handler saves the input. UBSAN_OPTIONS, read after this, can still override it.
extern "C" const char* __ubsan_default_options() { return "abort_on_error=1:print_stacktrace=1"; }

namespace {

using fuzz::mutator::Bytes;

// ---- what a crash report needs, readable from a signal handler (no allocation there) ----
const char* g_program = "fuzz";
uint64_t g_seed = 1;
std::atomic<uint64_t> g_iteration{0};  // also the watchdog's progress counter
const uint8_t* g_input = nullptr;
std::size_t g_input_size = 0;
char g_crash_path[4096] = "";

void put(const char* s) { [[maybe_unused]] auto n = ::write(2, s, std::strlen(s)); }
void put_number(uint64_t v) {
    char buf[24];
    int i = 23;
    buf[i] = 0;
    do buf[--i] = char('0' + v % 10);
    while ((v /= 10) && i > 0);
    put(buf + i);
}

// Async-signal-safe: open/write/close only.
void save_input_and_report(const char* why) {
    put("\n");
    put(g_program);
    put(": ");
    put(why);
    put("\n  seed ");
    put_number(g_seed);
    put(", iteration ");
    put_number(g_iteration.load());
    const int fd = ::open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool saved = fd >= 0;
    for (std::size_t off = 0; saved && off < g_input_size;) {
        const ssize_t w = ::write(fd, g_input + off, g_input_size - off);
        saved = w > 0;
        off += saved ? std::size_t(w) : 0;
    }
    if (fd >= 0) ::close(fd);
    put(saved ? ", input saved to " : ", could not save the input to ");
    put(g_crash_path);
    put("\n  reproduce: ");
    put(g_program);
    put(" --replay ");
    put(g_crash_path);
    put("\n");
}

void on_signal(int sig) {
    save_input_and_report(sig == SIGSEGV  ? "SIGSEGV (bad memory access or stack overflow)"
                          : sig == SIGBUS ? "SIGBUS"
                          : sig == SIGFPE ? "SIGFPE (e.g. integer division by zero)"
                          : sig == SIGILL ? "SIGILL (e.g. __builtin_trap)"
                                          : "SIGABRT (abort, assert, or the sanitizer report above)");
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

void on_sanitizer_death() { save_input_and_report("sanitizer report above"); }

void install_crash_handlers() {
    const bool sanitized = __sanitizer_set_death_callback != nullptr;
    if (sanitized) __sanitizer_set_death_callback(on_sanitizer_death);  // ASan reports SEGV and stack overflow itself
    static std::vector<char> alt_stack(1 << 16);  // a stack overflow leaves no stack to handle SIGSEGV on
    stack_t ss{};
    ss.ss_sp = alt_stack.data();
    ss.ss_size = alt_stack.size();
    ::sigaltstack(&ss, nullptr);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_ONSTACK;
    ::sigemptyset(&sa.sa_mask);
    ::sigaction(SIGABRT, &sa, nullptr);
    if (!sanitized)
        for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) ::sigaction(sig, &sa, nullptr);
}

// Reports an input that made no progress for `timeout` seconds, then ends the process.
class Watchdog {
public:
    explicit Watchdog(int timeout) : thread_([this, timeout] { run(timeout); }) {}
    ~Watchdog() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            done_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }

private:
    void run(int timeout) {
        std::unique_lock<std::mutex> lock(mutex_);
        uint64_t last = g_iteration.load();
        int still = 0;
        while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return done_; })) {
            const uint64_t now = g_iteration.load();
            still = now == last ? still + 1 : 0;
            last = now;
            if (timeout > 0 && still >= timeout) {
                save_input_and_report("hang: one input ran longer than --timeout");
                ::_exit(1);
            }
        }
    }
    std::mutex mutex_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_;
};

Bytes read_file(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::string demangle(const char* name) {
    int status = 0;
    char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
    std::string s = status == 0 && d ? d : name;
    std::free(d);
    return s;
}

// Runs one input; returns false (after reporting and saving it) when an exception escaped.
bool run_one(const Bytes& input, uint64_t iteration, const std::string& crash_dir) {
    g_input = input.data();
    g_input_size = input.size();
    std::snprintf(g_crash_path, sizeof g_crash_path, "%s/crash-%s-seed%llu-iter%llu.bin", crash_dir.c_str(), g_program,
                  (unsigned long long)g_seed, (unsigned long long)iteration);
    g_iteration.store(iteration);
    std::string what;
    try {
        LLVMFuzzerTestOneInput(input.data(), input.size());
        return true;
    } catch (const std::exception& e) {
        what = "uncaught " + demangle(typeid(e).name()) + ": " + e.what();
    } catch (...) { what = "uncaught exception of a type not derived from std::exception"; }
    if (what.size() > 2000) what = what.substr(0, 2000) + "...";
    save_input_and_report(what.c_str());
    return false;
}

[[noreturn]] void usage(const std::string& problem) {
    std::cerr << g_program << ": " << problem << "\nusage: " << g_program
              << " [--seed N] [--seconds S] [--iterations N] [--timeout S] [--max-len N] [--crash-dir D] [--replay]"
                 " CORPUS_DIR_OR_FILE...\n";
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    static const std::string program = std::filesystem::path(argv[0]).filename().string();
    g_program = program.c_str();
    double seconds = 10;
    uint64_t iterations = 0;
    int timeout = 10;
    std::size_t max_len = 1 << 20;
    std::string crash_dir = ".";
    bool replay = false;
    std::vector<std::filesystem::path> inputs;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        try {
            if (a == "--seed")
                g_seed = std::stoull(value());
            else if (a == "--seconds")
                seconds = std::stod(value());
            else if (a == "--iterations")
                iterations = std::stoull(value());
            else if (a == "--timeout")
                timeout = std::stoi(value());
            else if (a == "--max-len")
                max_len = std::stoull(value());
            else if (a == "--crash-dir")
                crash_dir = value();
            else if (a == "--replay")
                replay = true;
            else if (a.rfind("--", 0) == 0)
                usage("unknown option " + a);
            else
                inputs.push_back(a);
        } catch (const std::logic_error&) {  // std::stoull and friends: not a number
            usage("bad value for " + a);
        }
    }
    if (const char* env = std::getenv("BITGRAD_FUZZ_SECONDS"); env && *env) seconds = std::atof(env);

    std::vector<Bytes> corpus;
    std::vector<std::filesystem::path> files;
    for (const auto& p : inputs) {
        std::error_code ec;
        if (std::filesystem::is_directory(p, ec)) {
            for (const auto& e : std::filesystem::directory_iterator(p))
                if (e.is_regular_file()) files.push_back(e.path());
        } else if (std::filesystem::is_regular_file(p, ec)) {
            files.push_back(p);
        } else {
            usage("no such file or directory: " + p.string());
        }
    }
    std::sort(files.begin(), files.end());  // directory order varies; the mutation stream must not
    for (const auto& f : files) corpus.push_back(read_file(f));
    if (replay && corpus.empty()) usage("--replay needs the files to run");
    if (corpus.empty()) corpus.push_back({});

    install_crash_handlers();
    Watchdog watchdog(timeout);
    const auto start = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };

    // Iterations 1..corpus.size() are the corpus entries as they are; mutants follow.
    uint64_t iteration = 0;
    for (const Bytes& entry : corpus)
        if (!run_one(entry, ++iteration, crash_dir)) return 1;
    if (replay) {
        std::cout << program << ": replayed " << corpus.size() << " inputs, none escaped\n";
        return 0;
    }
    fuzz::mutator::Rand rand(g_seed);
    uint64_t mutants = 0;
    while ((iterations == 0 || iteration < iterations) && (seconds <= 0 || elapsed() < seconds)) {
        if (seconds <= 0 && iterations == 0 && mutants >= 100000) break;  // neither bound given: stay bounded
        const Bytes input = fuzz::mutator::mutate(corpus[rand.below(corpus.size())], corpus, rand, max_len);
        ++mutants;
        if (!run_one(input, ++iteration, crash_dir)) return 1;
    }
    const double t = elapsed();
    std::cout << program << ": seed " << g_seed << ", " << mutants << " mutated inputs + " << corpus.size()
              << " corpus entries in " << t << " s (" << uint64_t(double(iteration) / std::max(t, 1e-9))
              << "/s), nothing escaped\n";
    return 0;
}
