#pragma once
// The tape: a Wengert list of backward closures.
//
// While a Tape is alive (and no NoGrad guard is), every op whose inputs need a gradient appends one
// record: a closure that reads the output's gradient and adds (+=) into the inputs' gradients.
// backward(loss) seeds d loss = 1 and runs the records once in reverse order. No graph objects:
// the reverse of the forward order is already a valid topological order.
//
//   Tape tape;                          // records onto this tape while it lives
//   Var<float> loss = ...ops...;
//   tape.backward(loss);                // gradients land in the parameters' grad()
//
// Parameters (leaf Vars made outside any tape) keep their gradient across tapes, so running several
// tapes before an optimizer step accumulates gradients. Activations made on a tape die with it.
// Tapes nest per thread; ops record onto the innermost one.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bitgrad/autograd/profile.hpp"
#include "bitgrad/core/error.hpp"

namespace bitgrad {

class Tape;

namespace detail {
struct TapeRegistry {
    std::vector<Tape*> live;  // innermost last
    int no_grad_depth = 0;
    uint64_t next_id = 1;
};
inline TapeRegistry& tape_registry() {
    thread_local TapeRegistry registry;
    return registry;
}
}  // namespace detail

class Tape {
public:
    Tape() : id_(detail::tape_registry().next_id++) { detail::tape_registry().live.push_back(this); }
    ~Tape() {
        auto& live = detail::tape_registry().live;
        live.erase(std::remove(live.begin(), live.end(), this), live.end());
    }
    Tape(const Tape&) = delete;
    Tape& operator=(const Tape&) = delete;

    uint64_t id() const { return id_; }
    // Differentiates loss (a Var recorded on this tape); defined in var.hpp.
    template <class V>
    void backward(const V& loss);
    std::size_t size() const { return records_.size(); }
    bool backward_done() const { return done_; }

    // Appends a record; called by record_op (var.hpp), which an op calls instead.
    void push(const char* op, std::function<void()> backward) {
        BITGRAD_CHECK(!done_, op << ": recording onto a tape whose backward already ran; start a new Tape");
        records_.push_back({op, std::move(backward)});
    }

    // Runs the records in reverse. The caller (Var-level backward in var.hpp) seeds the gradient first.
    void run_backward() {
        BITGRAD_CHECK(!done_,
                      "backward: this tape's backward already ran (its saved activations are freed); "
                      "record a new Tape to differentiate again");
        done_ = true;
        Profiler* profiler = detail::active_profiler();
        for (auto it = records_.rbegin(); it != records_.rend(); ++it) {
            const auto t0 = profiler ? Profiler::Clock::now() : Profiler::Clock::time_point();
            it->backward();
            it->backward = nullptr;  // frees what the op saved for backward as soon as it is used
            if (profiler)
                profiler->op_backward(it->op, std::chrono::duration<double>(Profiler::Clock::now() - t0).count());
        }
        records_.clear();
    }

    // The innermost live tape of this thread that records (nullptr under NoGrad or with no tape).
    static Tape* current() {
        auto& r = detail::tape_registry();
        return (r.no_grad_depth > 0 || r.live.empty()) ? nullptr : r.live.back();
    }
    static bool is_live(uint64_t id) {
        for (Tape* t : detail::tape_registry().live)
            if (t->id_ == id) return true;
        return false;
    }
    static Tape* find(uint64_t id) {
        for (Tape* t : detail::tape_registry().live)
            if (t->id_ == id) return t;
        return nullptr;
    }

private:
    struct Record {
        const char* op;
        std::function<void()> backward;
    };
    uint64_t id_;
    std::vector<Record> records_;
    bool done_ = false;
};

// NoGrad: while alive, ops record nothing (teacher forward, evaluation, optimizer updates).
class NoGrad {
public:
    NoGrad() { ++detail::tape_registry().no_grad_depth; }
    ~NoGrad() { --detail::tape_registry().no_grad_depth; }
    NoGrad(const NoGrad&) = delete;
    NoGrad& operator=(const NoGrad&) = delete;
};

inline bool grad_enabled() { return Tape::current() != nullptr; }

}  // namespace bitgrad
