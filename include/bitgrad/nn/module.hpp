#pragma once
// Module: a named tree of parameters, as in PyTorch's nn.Module, with Hugging Face names.
//
// A module registers its parameters (leaf Vars) and its child modules under names; the full name of
// a parameter joins the path with dots: "model.layers.3.mlp.down_proj.wscale". Modules are
// neither copyable nor movable (children are registered by address), so hold them by value as
// members, or in std::vector<std::unique_ptr<...>>.
#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bitgrad/autograd/parameter.hpp"
#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/parallel.hpp"

namespace bitgrad::nn {

template <class T>
using StateDict = std::map<std::string, Tensor<T>>;

template <class T>
class Module {
public:
    Module() = default;
    virtual ~Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    // All parameters of this module and its children, in registration order, with full names.
    std::vector<NamedParameter<T>> named_parameters(const std::string& prefix = "") const {
        std::vector<NamedParameter<T>> out;
        collect(prefix, out);
        return out;
    }
    std::vector<Var<T>> parameters() const {
        std::vector<Var<T>> out;
        for (auto& p : named_parameters()) out.push_back(p.var);
        return out;
    }
    int64_t num_parameters() const {
        int64_t n = 0;
        for (auto& p : named_parameters()) n += p.var.numel();
        return n;
    }
    // Direct children, with their names (for per-layer summaries).
    const std::vector<std::pair<std::string, Module*>>& children() const { return children_; }

    void train(bool on = true) {
        training_ = on;
        for (auto& [name, child] : children_) child->train(on);
    }
    void eval() { train(false); }
    bool training() const { return training_; }

    // Drops every parameter's gradient: its memory goes back to the system until the next backward
    // allocates it again (the trainer does this after each optimizer step).
    void clear_grad() {
        for (auto& p : named_parameters()) p.var.clear_grad();
    }
    void zero_grad() {
        for (auto& p : named_parameters()) {
            if (!p.var.grad().defined()) continue;
            T* g = p.var.grad().data();
            parallel_chunks(p.var.numel(), [&](int64_t b, int64_t e) { std::fill(g + b, g + e, T(0)); });
        }
    }

    // name -> tensor, sharing storage with the parameters (clone to snapshot).
    StateDict<T> state_dict() const {
        StateDict<T> out;
        for (auto& p : named_parameters()) out[p.name] = p.var.value();
        return out;
    }
    // Copies values in. Strict: every parameter present with its exact shape, and no extra names;
    // otherwise an error lists every name that differs. Non-strict ignores extras (still requires
    // every parameter and its shape).
    void load_state_dict(const StateDict<T>& dict, bool strict = true) {
        std::string missing, mismatched, unexpected;
        auto params = named_parameters();
        std::map<std::string, bool> known;
        for (auto& p : params) {
            known[p.name] = true;
            auto it = dict.find(p.name);
            if (it == dict.end())
                missing += "\n  " + p.name + " " + p.var.shape().str();
            else if (it->second.shape() != p.var.shape())
                mismatched +=
                    "\n  " + p.name + ": expected " + p.var.shape().str() + ", got " + it->second.shape().str();
        }
        if (strict)
            for (auto& [name, t] : dict)
                if (!known.count(name)) unexpected += "\n  " + name + " " + t.shape().str();
        BITGRAD_CHECK(missing.empty() && mismatched.empty() && unexpected.empty(),
                      "load_state_dict: the tensors do not match the model"
                          << (missing.empty() ? "" : "\nmissing:" + missing)
                          << (mismatched.empty() ? "" : "\nshape mismatch:" + mismatched)
                          << (unexpected.empty() ? "" : "\nunexpected (pass strict = false to ignore):" + unexpected));
        for (auto& p : params) p.var.value().copy_from(dict.at(p.name));
    }

protected:
    Var<T> register_parameter(const std::string& name, Tensor<T> value, ParamKind kind) {
        Var<T> v(std::move(value), /*requires_grad=*/true);
        params_.push_back({name, v, kind});
        return v;
    }
    template <class M>
    M& register_module(const std::string& name, M& child) {
        children_.push_back({name, &child});
        return child;
    }

private:
    void collect(const std::string& prefix, std::vector<NamedParameter<T>>& out) const {
        for (auto& p : params_) out.push_back({prefix + p.name, p.var, p.kind});
        for (auto& [name, child] : children_) child->collect(prefix + name + ".", out);
    }

    std::vector<NamedParameter<T>> params_;
    std::vector<std::pair<std::string, Module*>> children_;
    bool training_ = true;
};

}  // namespace bitgrad::nn
