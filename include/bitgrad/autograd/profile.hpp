#pragma once
// Profiler: where a step's time goes, per op and per phase, from the tape's own bookkeeping.
//
//   Profiler prof;                        // profiles this thread's ops while alive
//   prof.phase("teacher forward");  ...   // later time is attributed to this phase
//   prof.phase("student forward");  ...
//   std::cout << prof.report();          // ops sorted by total time, phases in order
//
// An op's forward time is the time since the previous op (or phase mark) finished, so work done
// between ops is charged to the next op; its backward time is its backward closure, measured in
// Tape::run_backward. The cost when no Profiler is alive is one thread-local load per op.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace bitgrad {

class Profiler;

namespace detail {
inline Profiler*& active_profiler() {
    thread_local Profiler* p = nullptr;
    return p;
}
}  // namespace detail

class Profiler {
public:
    using Clock = std::chrono::steady_clock;
    struct OpTimes {
        double forward_s = 0, backward_s = 0;
        int64_t calls = 0;
    };

    Profiler() : saved_(detail::active_profiler()), mark_(Clock::now()) { detail::active_profiler() = this; }
    ~Profiler() { detail::active_profiler() = saved_; }
    Profiler(const Profiler&) = delete;
    Profiler& operator=(const Profiler&) = delete;

    // Ends the current phase (if any) and starts `name`.
    void phase(const std::string& name) {
        close_phase();
        phases_.push_back({name, 0.0});
        open_ = true;
        phase_start_ = mark_ = Clock::now();
    }
    // Ends the current phase; call before reading phases() if the last one should be counted.
    void stop() { close_phase(); }

    const std::map<std::string, OpTimes>& ops() const { return ops_; }
    const std::vector<std::pair<std::string, double>>& phases() const { return phases_; }
    double phase_seconds(const std::string& name) const {
        double s = 0;
        for (auto& [n, t] : phases_) s += n == name ? t : 0.0;
        return s;
    }

    // A table: phases with their seconds, then ops by total (forward + backward) time.
    std::string report() {
        close_phase();
        std::string out;
        char line[160];
        for (auto& [name, s] : phases_) {
            std::snprintf(line, sizeof line, "phase %-28s %9.3f s\n", name.c_str(), s);
            out += line;
        }
        std::vector<std::pair<std::string, OpTimes>> sorted(ops_.begin(), ops_.end());
        std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) {
            return a.second.forward_s + a.second.backward_s > b.second.forward_s + b.second.backward_s;
        });
        std::snprintf(line, sizeof line, "%-28s %8s %11s %11s\n", "op", "calls", "forward s", "backward s");
        out += line;
        for (auto& [name, t] : sorted) {
            std::snprintf(line, sizeof line, "%-28s %8lld %11.3f %11.3f\n", name.c_str(), (long long)t.calls,
                          t.forward_s, t.backward_s);
            out += line;
        }
        return out;
    }

    // Hooks (called by record_op and Tape::run_backward).
    void op_forward_done(const char* op) {
        const auto now = Clock::now();
        OpTimes& t = ops_[op];
        t.forward_s += std::chrono::duration<double>(now - mark_).count();
        ++t.calls;
        mark_ = now;
    }
    void op_backward(const char* op, double seconds) {
        ops_[op].backward_s += seconds;
        mark_ = Clock::now();
    }

private:
    void close_phase() {
        if (open_) phases_.back().second += std::chrono::duration<double>(Clock::now() - phase_start_).count();
        open_ = false;
    }

    Profiler* saved_;
    Clock::time_point mark_, phase_start_;
    std::map<std::string, OpTimes> ops_;
    std::vector<std::pair<std::string, double>> phases_;
    bool open_ = false;
};

}  // namespace bitgrad
