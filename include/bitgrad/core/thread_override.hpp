#pragma once
// ThreadOverride<T, Tag>: a per-thread setting, unset unless a scope on this thread says otherwise.
//   using PrecisionScope = ThreadOverride<Precision>;
//   PrecisionScope bf16(Precision::BF16);            // this thread, until the scope ends
//   PrecisionScope::current().value_or(Precision::FP32)   // the setting, or the caller's default
// Scopes nest (each restores what it found) and never touch other threads: an OpenMP worker or a
// test on another thread sees its own value. Tag tells apart two settings of the same type
// (ParallelMinWork is an int64_t).
#include <optional>

namespace bitgrad {

template <class T, class Tag = T>
class ThreadOverride {
public:
    explicit ThreadOverride(T value) : saved_(slot()) { slot() = value; }
    ~ThreadOverride() { slot() = saved_; }
    ThreadOverride(const ThreadOverride&) = delete;
    ThreadOverride& operator=(const ThreadOverride&) = delete;

    // This thread's value, if a scope set one.
    static std::optional<T> current() { return slot(); }

private:
    static std::optional<T>& slot() {
        thread_local std::optional<T> value;
        return value;
    }
    std::optional<T> saved_;
};

}  // namespace bitgrad
