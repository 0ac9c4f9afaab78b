#pragma once
// NumPy broadcasting for binary elementwise ops: shapes align at the right, each extent must be
// equal or 1. The backward of a broadcast input sums the gradient over the broadcast axes.
#include <algorithm>
#include <array>

#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/shape.hpp"

namespace bitgrad::detail {

struct BroadcastPlan {
    Shape out;
    int nd = 0;
    std::array<int64_t, kMaxDims> a_stride{}, b_stride{};  // per output axis; 0 on broadcast axes

    BroadcastPlan(const char* op, const Shape& a, const Shape& b) {
        nd = std::max(a.ndim(), b.ndim());
        std::array<int64_t, kMaxDims> ad{}, bd{};
        for (int i = 0; i < nd; ++i) {
            int ia = i - (nd - a.ndim()), ib = i - (nd - b.ndim());
            ad[i] = ia >= 0 ? a[ia] : 1;
            bd[i] = ib >= 0 ? b[ib] : 1;
            BITGRAD_CHECK(ad[i] == bd[i] || ad[i] == 1 || bd[i] == 1, op << ": shapes " << a << " and " << b
                                                                         << " do not broadcast (axis " << i << ": "
                                                                         << ad[i] << " vs " << bd[i] << ")");
            out.push_back(std::max(ad[i], bd[i]));
        }
        int64_t sa = 1, sb = 1;
        for (int i = nd - 1; i >= 0; --i) {
            a_stride[i] = ad[i] == 1 ? 0 : sa;
            b_stride[i] = bd[i] == 1 ? 0 : sb;
            sa *= ad[i];
            sb *= bd[i];
        }
    }

    int64_t row_len() const { return nd ? out[nd - 1] : 1; }
    int64_t rows() const { return out.numel() / std::max<int64_t>(row_len(), 1); }

    // Offsets of output row r in a and b.
    void row_offsets(int64_t r, int64_t& oa, int64_t& ob) const {
        oa = ob = 0;
        for (int i = nd - 2; i >= 0; --i) {
            int64_t idx = r % out[i];
            r /= out[i];
            oa += idx * a_stride[i];
            ob += idx * b_stride[i];
        }
    }

    // body(o, ia, ib) for every output element; rows in parallel when parallel is true.
    template <class F>
    void for_each(F&& body, bool parallel) const {
        const int64_t L = row_len(), R = rows();
        const int64_t sa = nd ? a_stride[nd - 1] : 0, sb = nd ? b_stride[nd - 1] : 0;
        auto row = [&](int64_t r) {
            int64_t oa, ob;
            row_offsets(r, oa, ob);
            for (int64_t j = 0; j < L; ++j) body(r * L + j, oa + j * sa, ob + j * sb);
        };
        if (parallel)
            parallel_for(R, row, L);
        else
            for (int64_t r = 0; r < R; ++r) row(r);
    }
};

}  // namespace bitgrad::detail
