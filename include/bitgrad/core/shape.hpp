#pragma once
// Shape: up to kMaxDims extents stored inline (no heap), row-major. A 0-dim shape is a scalar (numel 1).
#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

#include "bitgrad/core/error.hpp"

namespace bitgrad {

inline constexpr int kMaxDims = 6;

class Shape {
public:
    Shape() = default;
    Shape(std::initializer_list<int64_t> dims) { assign(dims.begin(), dims.end()); }
    explicit Shape(const std::vector<int64_t>& dims) { assign(dims.begin(), dims.end()); }

    int ndim() const { return ndim_; }
    int64_t numel() const {
        int64_t n = 1;
        for (int i = 0; i < ndim_; ++i) n *= dims_[i];
        return n;
    }
    // Negative axes count from the end, as in NumPy: shape[-1] is the last extent.
    int axis(int a) const {
        int r = a < 0 ? a + ndim_ : a;
        BITGRAD_CHECK(r >= 0 && r < ndim_, "axis " << a << " out of range for shape " << str());
        return r;
    }
    int64_t operator[](int a) const { return dims_[axis(a)]; }
    int64_t& operator[](int a) { return dims_[axis(a)]; }
    int64_t last() const { return ndim_ == 0 ? 1 : dims_[ndim_ - 1]; }
    // Product of all extents but the last: the number of rows when viewed as [rows, last].
    int64_t rows() const { return ndim_ == 0 ? 1 : numel() / std::max<int64_t>(last(), 1); }

    Shape with_last(int64_t n) const {
        Shape s = *this;
        BITGRAD_CHECK(ndim_ > 0, "with_last on a scalar shape");
        s.dims_[ndim_ - 1] = n;
        return s;
    }
    Shape without(int a) const {
        int r = axis(a);
        Shape s;
        for (int i = 0; i < ndim_; ++i)
            if (i != r) s.push_back(dims_[i]);
        return s;
    }
    void push_back(int64_t d) {
        BITGRAD_CHECK(ndim_ < kMaxDims, "shape " << str() << " already has the maximum of " << kMaxDims << " dims");
        BITGRAD_CHECK(d >= 0, "negative extent " << d << " in shape");
        dims_[ndim_++] = d;
    }
    std::vector<int64_t> vec() const { return {dims_.begin(), dims_.begin() + ndim_}; }

    bool operator==(const Shape& o) const {
        return ndim_ == o.ndim_ && std::equal(dims_.begin(), dims_.begin() + ndim_, o.dims_.begin());
    }
    bool operator!=(const Shape& o) const { return !(*this == o); }

    std::string str() const {
        std::string s = "[";
        for (int i = 0; i < ndim_; ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
        return s + "]";
    }

private:
    template <class It>
    void assign(It b, It e) {
        for (; b != e; ++b) push_back(*b);
    }
    std::array<int64_t, kMaxDims> dims_{};
    int ndim_ = 0;
};

inline std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

}  // namespace bitgrad
