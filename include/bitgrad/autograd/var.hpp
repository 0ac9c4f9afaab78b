#pragma once
// Var<T>: a tensor value plus a gradient slot (GradSlot), shared by reference (copies are handles).
//
// Leaves are made by the user: Var(tensor, /*requires_grad=*/true) is a parameter; its gradient
// accumulates (+=) across tapes until zero_grad(). Non-leaf Vars are made by ops on a tape; their
// gradient is freed as soon as the backward sweep has used it, unless retain_grad() was called.
#include <memory>
#include <utility>

#include "bitgrad/autograd/tape.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/tensor.hpp"

namespace bitgrad {

// What backward needs of a Var: where its gradient goes. Kept apart from the value so that an op
// that needs only an input's gradient slot (add, reshape, rope, ...) does not keep the input's
// value alive until backward; a tape record holds its output's slot, not its value.
template <class T>
struct GradSlot {
    Tensor<T> grad;  // undefined until a gradient arrives
    Shape shape;     // the value's shape (the gradient's)
    bool requires_grad = false;
    bool retain_grad = false;
    uint64_t tape_id = 0;  // 0: a leaf, usable from any tape
};
template <class T>
using GradRef = std::shared_ptr<GradSlot<T>>;

template <class T>
class Var {
public:
    struct Node {
        Tensor<T> value;
        GradRef<T> slot;
    };

    Var() = default;
    explicit Var(Tensor<T> value, bool requires_grad = false) : node_(std::make_shared<Node>()) {
        auto slot = std::make_shared<GradSlot<T>>();
        slot->shape = value.shape();
        slot->requires_grad = requires_grad;
        slot->retain_grad = requires_grad;
        node_->value = std::move(value);
        node_->slot = std::move(slot);
    }

    bool defined() const { return node_ != nullptr; }
    const Tensor<T>& value() const { return node_->value; }
    Tensor<T>& value() { return node_->value; }
    const Shape& shape() const { return node_->value.shape(); }
    int64_t dim(int axis) const { return node_->value.dim(axis); }
    int64_t numel() const { return node_->value.numel(); }
    T item() const { return node_->value.item(); }

    bool requires_grad() const { return node_ && node_->slot->requires_grad; }
    bool is_leaf() const { return node_->slot->tape_id == 0; }
    uint64_t tape_id() const { return node_->slot->tape_id; }
    // The accumulated gradient; undefined (grad().defined() == false) if none has arrived.
    const Tensor<T>& grad() const { return node_->slot->grad; }
    Tensor<T>& grad() { return node_->slot->grad; }
    void zero_grad() {
        if (grad().defined()) grad().zero();
    }
    // Drops the gradient buffer (frees memory; the next backward allocates a fresh one).
    void clear_grad() { grad() = Tensor<T>(); }
    void set_requires_grad(bool on) {
        BITGRAD_CHECK(is_leaf(), "set_requires_grad: only leaf Vars (parameters, inputs) can change it");
        node_->slot->requires_grad = on;
        node_->slot->retain_grad = on;
    }
    // Keeps this non-leaf Var's gradient after backward (for inspection and tests).
    Var& retain_grad() {
        node_->slot->retain_grad = true;
        return *this;
    }

    // The gradient slot alone: what an op's backward captures when it needs the input's gradient
    // but not its value.
    const GradRef<T>& slot() const { return node_->slot; }

private:
    std::shared_ptr<Node> node_;
};

template <class T>
using Parameter = Var<T>;

namespace detail {
// A zero gradient for a slot. A leaf's (a parameter's) is created during the backward and dropped
// after the optimizer step, so it may borrow a larger cached block freed by the backward
// (core/allocator.hpp says why); an activation's takes a block of its own size class.
template <class T>
Tensor<T> zero_grad_for(const GradSlot<T>& s) {
    return s.tape_id == 0 ? Tensor<T>::zeros_in_reused_block(s.shape) : Tensor<T>::zeros(s.shape);
}
}  // namespace detail

// ---- Writing an op: the three calls every op in ops/ makes, public for ops of your own ----
//
//   template <class T>
//   Var<T> my_op(const Var<T>& x) {
//       Tensor<T> y = ...forward, from x.value()...;
//       return record_op("my_op", std::move(y), {x}, [x](const Tensor<T>& g) {
//           if (Tensor<T>* gx = grad_sink(x)) ...add d loss/dx, computed from g, into *gx...;
//       });
//   }
//
// examples/08_custom_op.cpp is a complete one with its gradcheck (autograd/gradcheck.hpp).

// The gradient buffer of x to add into (x's shape, zero-filled on first use), or nullptr if x
// needs no gradient: a backward closure skips the work nobody asked for. Add into it (+=), never
// assign: an input used twice, or a parameter accumulating over several tapes, gets every
// contribution that way.
template <class T>
Tensor<T>* grad_sink(const GradRef<T>& s) {
    if (!s->requires_grad) return nullptr;
    if (!s->grad.defined()) s->grad = detail::zero_grad_for(*s);
    return &s->grad;
}
template <class T>
Tensor<T>* grad_sink(const Var<T>& x) {
    return grad_sink(x.slot());
}

// Adds g into x's gradient (nothing if x needs none); g holds as many elements as x, in x's order
// (its shape may differ: reshape passes its output's gradient through). When x has no gradient yet
// and nobody else holds g's storage (an op's output gradient, freed right after its backward), x
// takes the storage instead of a zero-filled copy plus an add: ops that pass a gradient through
// unchanged (reshape, add) then cost nothing.
template <class T>
void accumulate_grad(const GradRef<T>& n, const Tensor<T>& g) {
    if (!n->requires_grad) return;
    BITGRAD_CHECK(g.numel() == n->shape.numel(), "accumulate_grad: the gradient has shape "
                                                     << g.shape() << " (" << g.numel() << " elements), the input "
                                                     << n->shape << " (" << n->shape.numel() << ")");
    if (!n->grad.defined() && g.use_count() == 1 && n->tape_id != 0) {
        n->grad = g.reshape(n->shape);
        return;
    }
    if (!n->grad.defined()) n->grad = detail::zero_grad_for(*n);
    T* d = n->grad.data();
    const T* s = g.data();
    parallel_chunks(g.numel(), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) d[i] += s[i];
    });
}
template <class T>
void accumulate_grad(const Var<T>& x, const Tensor<T>& g) {
    accumulate_grad(x.slot(), g);
}

// Returns out_value as a Var and, if a tape records and an input needs a gradient, appends the
// op's backward to that tape. The contract:
//   op        the op's name for errors and the Profiler; kept as a pointer, so a string literal.
//   inputs    every Var whose gradient backward adds into. An activation must come from the
//             current tape (one from an outer or a destroyed tape is refused with an Error).
//   backward  called as backward(g) at most once, during the tape's backward and only if a
//             gradient reached the output; g = d loss / d output, of the output's shape. It adds
//             into each input's gradient with grad_sink or accumulate_grad, computing on Tensors
//             (ops on Vars that need a gradient would record onto the tape being swept, which
//             throws). It captures by value what it needs (a Var is a handle; capture x.slot()
//             when only x's gradient is needed, so x's value is freed early) and is destroyed
//             right after it ran.
// With no tape alive, under NoGrad, or with no input that needs a gradient, nothing is recorded,
// backward is dropped, and the result needs no gradient: inference pays no autograd cost.
template <class T, class Backward>
Var<T> record_op(const char* op, Tensor<T> out_value, std::initializer_list<Var<T>> inputs, Backward&& backward) {
    if (Profiler* profiler = detail::active_profiler()) profiler->op_forward_done(op);
    Var<T> out(std::move(out_value));
    Tape* tape = Tape::current();
    if (!tape) return out;
    bool any = false;
    int index = 0;
    for (const Var<T>& in : inputs) {
        BITGRAD_CHECK(in.defined(), op << ": input " << index << " is an empty Var");
        if (in.requires_grad()) {
            any = true;
            if (!in.is_leaf() && in.tape_id() != tape->id()) {
                BITGRAD_CHECK(Tape::is_live(in.tape_id()),
                              op << ": input " << index << " (shape " << in.shape()
                                 << ") comes from a tape that no longer exists; its backward graph is gone. "
                                    "Recompute it on the current tape");
                BITGRAD_CHECK(false, op << ": input " << index << " (shape " << in.shape()
                                        << ") was recorded on an outer tape, not the current one");
            }
        }
        ++index;
    }
    if (!any) return out;
    const GradRef<T>& slot = out.slot();
    slot->requires_grad = true;
    slot->tape_id = tape->id();
    tape->push(op, [out_slot = slot, fn = std::forward<Backward>(backward)]() mutable {
        if (!out_slot->grad.defined()) return;  // nothing flowed back into this op
        if (out_slot->retain_grad) {
            fn(static_cast<const Tensor<T>&>(out_slot->grad.clone()));  // kept: inputs must not take its storage
            return;
        }
        Tensor<T> g = std::move(out_slot->grad);  // the only handle: inputs may take it (accumulate_grad)
        out_slot->grad = Tensor<T>();
        fn(static_cast<const Tensor<T>&>(g));
    });
    return out;
}

// Runs the backward sweep of the tape that recorded loss. loss must be a scalar unless a seed
// gradient of its shape is given (then this computes the vector-Jacobian product with seed).
template <class T>
void backward(const Var<T>& loss, const Tensor<T>& seed = Tensor<T>()) {
    BITGRAD_CHECK(loss.defined(), "backward: loss is an empty Var");
    BITGRAD_CHECK(loss.requires_grad(), "backward: loss (shape "
                                            << loss.shape()
                                            << ") does not depend on anything that requires a "
                                               "gradient (was it computed under NoGrad or with no Tape?)");
    if (seed.defined()) {
        BITGRAD_CHECK(seed.shape() == loss.shape(), "backward: seed gradient has shape " << seed.shape()
                                                                                         << ", expected the loss shape "
                                                                                         << loss.shape());
    } else {
        BITGRAD_CHECK(loss.numel() == 1, "backward: loss has shape "
                                             << loss.shape()
                                             << "; expected a scalar, or pass a seed gradient of that shape");
    }
    const GradRef<T>& n = loss.slot();
    if (n->tape_id == 0) {  // a leaf: its gradient is the seed
        Tensor<T>* g = grad_sink(loss);
        if (seed.defined())
            g->flat() += seed.flat();
        else
            g->flat() += T(1);
        return;
    }
    Tape* tape = Tape::find(n->tape_id);
    BITGRAD_CHECK(tape, "backward: the tape that recorded this loss no longer exists");
    BITGRAD_CHECK(!tape->backward_done(),
                  "backward: called twice on the same tape; its saved activations were "
                  "freed by the first call. Record a new Tape for another backward");
    n->grad = seed.defined() ? seed.clone() : Tensor<T>::ones(loss.shape());
    tape->run_backward();
}

template <class V>
void Tape::backward(const V& loss) {
    BITGRAD_CHECK(loss.defined() && loss.tape_id() == id_,
                  "Tape::backward: the loss was not recorded on this tape (is it a leaf, or from another tape?)");
    bitgrad::backward(loss);
}

}  // namespace bitgrad
