#pragma once
// A named parameter and its kind: what modules (nn/) register and what optimizers (optim/) and
// trackers (train/) take, so those layers need no module type. Names follow Hugging Face:
// "model.layers.3.mlp.down_proj.wscale".
#include <string>

#include "bitgrad/autograd/var.hpp"

namespace bitgrad {

// What a parameter is, for summaries, optimizer groups (e.g. no weight decay on norms and scales)
// and packing (binary weights become 1 bit).
enum class ParamKind { Dense, Binary, Scale, Norm, Embedding };

inline const char* param_kind_name(ParamKind k) {
    switch (k) {
        case ParamKind::Dense: return "dense";
        case ParamKind::Binary: return "binary";
        case ParamKind::Scale: return "scale";
        case ParamKind::Norm: return "norm";
        case ParamKind::Embedding: return "embedding";
    }
    return "?";
}

template <class T>
struct NamedParameter {
    std::string name;
    Var<T> var;
    ParamKind kind;
};

}  // namespace bitgrad
