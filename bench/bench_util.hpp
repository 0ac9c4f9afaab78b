#pragma once
// Benchmark helpers: best-of-n wall time, and JSON-lines output (one object per measurement).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <bitgrad/bitgrad.hpp>

namespace bench {

// "a,b,c" -> {"a", "b", "c"} (the benches' list options).
inline std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
    return out;
}

template <class F>
double best_seconds(F&& fn, int reps) {
    if (reps > 0) fn();  // warm-up: faults in buffers, spins up threads
    double best = 1e30;
    for (int i = 0; i < std::max(reps, 1); ++i) {
        auto t0 = std::chrono::steady_clock::now();
        fn();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

// Best times of two functions measured alternately (a, b, a, b, ...), so a noisy neighbour or a
// clock change hits both alike; returns {best_a, best_b}.
template <class A, class B>
std::pair<double, double> best_seconds_interleaved(A&& a, B&& b, int reps) {
    a();
    b();
    double best_a = 1e30, best_b = 1e30;
    for (int i = 0; i < reps; ++i) {
        best_a = std::min(best_a, best_seconds(a, 0));
        best_b = std::min(best_b, best_seconds(b, 0));
    }
    return {best_a, best_b};
}

inline const char* gemm_backend() {
#ifdef BITGRAD_USE_BLAS
    return "openblas-openmp";
#else
    return "eigen";
#endif
}

// Resident set size of this process from /proc/self/status, in MiB: VmHWM (the peak so far) or
// VmRSS (now).
inline double status_mib(const char* field) {
    std::ifstream f("/proc/self/status");
    std::string key;
    while (f >> key) {
        if (key == field) {
            double kb;
            f >> kb;
            return kb / 1024.0;
        }
        std::getline(f, key);
    }
    return 0;
}
inline double peak_rss_mib() { return status_mib("VmHWM:"); }
inline double rss_mib() { return status_mib("VmRSS:"); }

}  // namespace bench
