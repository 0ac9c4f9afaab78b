#pragma once
// OpenMP helpers. bitgrad uses one thread pool, OpenMP's: Eigen's GEMM and (when enabled) the
// OpenMP build of OpenBLAS run on the same threads, so nothing oversubscribes the cores.
// Loops use static schedules so a given thread count always splits work the same way: results are
// bit-for-bit reproducible for a fixed thread count.
#include <cstdint>

#include "bitgrad/core/thread_override.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace bitgrad {

inline int num_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

inline void set_num_threads(int n) {
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}

inline int thread_index() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

struct ParallelMinWorkTag {};
// RAII: sets this thread's fork threshold for the scope (1 forks every loop with n > 1), then
// restores it. Per thread: the thread that calls parallel_for decides whether it forks.
using ParallelMinWork = ThreadOverride<int64_t, ParallelMinWorkTag>;

namespace detail {
// Work (n * cost_per_item, about one flop a unit) below which a loop stays on one thread: a fork
// costs a few microseconds. Tests lower it (ParallelMinWork) so threaded paths run at small sizes.
inline constexpr int64_t kParallelMinWork = 32768;
inline int64_t parallel_min_work() { return ParallelMinWork::current().value_or(kParallelMinWork); }
}  // namespace detail

// Calls body(i) for i in [0, n), in parallel when n * cost_per_item is worth a fork.
template <class F>
void parallel_for(int64_t n, F&& body, int64_t cost_per_item = 1) {
    [[maybe_unused]] const bool worth = n > 1 && n * cost_per_item >= detail::parallel_min_work();
#pragma omp parallel for schedule(static) if (worth)
    for (int64_t i = 0; i < n; ++i) body(i);
}

// Calls body(begin, end) on one contiguous chunk of [0, n) per thread.
template <class F>
void parallel_chunks(int64_t n, F&& body, int64_t cost_per_item = 1) {
    [[maybe_unused]] const bool worth = n > 1 && n * cost_per_item >= detail::parallel_min_work();
#pragma omp parallel if (worth)
    {
#ifdef _OPENMP
        const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
#else
        const int64_t nt = 1, t = 0;
#endif
        const int64_t begin = n * t / nt, end = n * (t + 1) / nt;
        if (begin < end) body(begin, end);
    }
}

}  // namespace bitgrad
