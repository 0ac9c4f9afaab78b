#pragma once
// Tensor<T>: a dense, contiguous, row-major array of up to kMaxDims dims.
//
// Storage is reference counted and 64-byte aligned; copies of a Tensor are cheap views of the same
// storage (like torch.Tensor). reshape() and slice() return views without copying; clone() copies.
// A tensor is always contiguous: views only ever cut along the first axis, so every kernel can
// treat data() as a packed row-major block and hand it to Eigen through matrix().
#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "bitgrad/core/allocator.hpp"
#include "bitgrad/core/error.hpp"
#include "bitgrad/core/memory.hpp"
#include "bitgrad/core/rng.hpp"
#include "bitgrad/core/shape.hpp"

namespace bitgrad {

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MatrixMap = Eigen::Map<RowMatrix<T>>;
template <class T>
using ConstMatrixMap = Eigen::Map<const RowMatrix<T>>;

template <class T>
class Tensor {
    static_assert(std::is_trivially_copyable_v<T>, "Tensor<T> holds plain numbers");

public:
    using value_type = T;

    Tensor() = default;
    // Uninitialised storage of the given shape (use zeros() when the contents matter).
    explicit Tensor(const Shape& shape) : shape_(shape) { allocate(1.0); }

    static Tensor empty(const Shape& shape) { return Tensor(shape); }
    // Zeros that may live in a cached block up to 1.5x their size (see core/allocator.hpp): for
    // buffers created while others of different sizes are being freed, such as parameter
    // gradients during the backward.
    static Tensor zeros_in_reused_block(const Shape& shape) {
        Tensor t;
        t.shape_ = shape;
        t.allocate(1.5);
        t.fill(T(0));
        return t;
    }
    static Tensor zeros(const Shape& shape) { return full(shape, T(0)); }
    static Tensor ones(const Shape& shape) { return full(shape, T(1)); }
    static Tensor full(const Shape& shape, T value) {
        Tensor t(shape);
        t.fill(value);
        return t;
    }
    static Tensor from(const Shape& shape, const std::vector<T>& values) {
        BITGRAD_CHECK(int64_t(values.size()) == shape.numel(), "Tensor::from: " << values.size() << " values for shape "
                                                                                << shape << " (expected "
                                                                                << shape.numel() << ")");
        Tensor t(shape);
        std::copy(values.begin(), values.end(), t.data());
        return t;
    }
    static Tensor scalar(T value) { return full(Shape{}, value); }
    // Normal(mean, stddev) entries drawn from rng in row-major order.
    static Tensor randn(const Shape& shape, Rng& rng, double stddev = 1.0, double mean = 0.0) {
        Tensor t(shape);
        for (int64_t i = 0; i < t.numel(); ++i) t.data_[i] = T(rng.normal(mean, stddev));
        return t;
    }
    static Tensor uniform(const Shape& shape, Rng& rng, double lo, double hi) {
        Tensor t(shape);
        for (int64_t i = 0; i < t.numel(); ++i) t.data_[i] = T(rng.uniform(lo, hi));
        return t;
    }

    bool defined() const { return data_ != nullptr || (storage_ != nullptr); }
    const Shape& shape() const { return shape_; }
    int ndim() const { return shape_.ndim(); }
    int64_t dim(int axis) const { return shape_[axis]; }
    int64_t numel() const { return shape_.numel(); }

    T* data() { return data_; }
    const T* data() const { return data_; }
    T* begin() { return data_; }
    T* end() { return data_ + numel(); }
    const T* begin() const { return data_; }
    const T* end() const { return data_ + numel(); }
    T& operator[](int64_t i) { return data_[i]; }
    const T& operator[](int64_t i) const { return data_[i]; }
    // Element at a full multi-index, bounds-checked: t.at({b, t, c}).
    T& at(std::initializer_list<int64_t> index) { return data_[offset(index)]; }
    const T& at(std::initializer_list<int64_t> index) const { return data_[offset(index)]; }
    T item() const {
        BITGRAD_CHECK(numel() == 1, "Tensor::item: shape " << shape_ << " has " << numel() << " elements, expected 1");
        return data_[0];
    }

    // View with a new shape of the same numel; one extent may be -1 (inferred).
    Tensor reshape(std::initializer_list<int64_t> dims) const { return reshape(std::vector<int64_t>(dims)); }
    Tensor reshape(std::vector<int64_t> dims) const {
        int64_t known = 1;
        int infer = -1;
        for (int i = 0; i < int(dims.size()); ++i) {
            if (dims[i] == -1) {
                BITGRAD_CHECK(infer < 0, "reshape: more than one -1 in the new shape for " << shape_);
                infer = i;
            } else {
                known *= dims[i];
            }
        }
        if (infer >= 0) {
            BITGRAD_CHECK(known > 0 && numel() % known == 0,
                          "reshape: cannot infer -1 when reshaping " << shape_ << " (numel " << numel() << ")");
            dims[infer] = numel() / known;
        }
        return reshape(Shape(dims));
    }
    Tensor reshape(const Shape& shape) const {
        BITGRAD_CHECK(shape.numel() == numel(), "reshape: " << shape_ << " (numel " << numel() << ") to " << shape
                                                            << " (numel " << shape.numel() << "): numel must match");
        Tensor v = *this;
        v.shape_ = shape;
        return v;
    }
    // View of rows [begin, end) along the first axis (contiguous, no copy).
    Tensor slice(int64_t begin, int64_t end) const {
        BITGRAD_CHECK(ndim() > 0 && 0 <= begin && begin <= end && end <= shape_[0],
                      "slice: [" << begin << ", " << end << ") out of range for shape " << shape_);
        Tensor v = *this;
        v.shape_[0] = end - begin;
        v.data_ = data_ + begin * (shape_[0] ? numel() / shape_[0] : 0);
        return v;
    }
    // View of entry i along the first axis, with that axis removed.
    Tensor select(int64_t i) const {
        Tensor v = slice(i, i + 1);
        v.shape_ = shape_.without(0);
        return v;
    }

    Tensor clone() const {
        Tensor t(shape_);
        if (numel()) std::memcpy(t.data_, data_, std::size_t(numel()) * sizeof(T));
        return t;
    }
    template <class U>
    Tensor<U> cast() const {
        Tensor<U> t(shape_);
        for (int64_t i = 0; i < numel(); ++i) t.data()[i] = U(data_[i]);
        return t;
    }
    void fill(T value) { std::fill(data_, data_ + numel(), value); }
    void zero() { fill(T(0)); }
    void copy_from(const Tensor& src) {
        BITGRAD_CHECK(src.shape() == shape_, "copy_from: source " << src.shape() << " into " << shape_);
        if (numel()) std::memcpy(data_, src.data_, std::size_t(numel()) * sizeof(T));
    }
    bool shares_storage(const Tensor& o) const { return storage_ == o.storage_; }
    // Handles (tensors and views) sharing this storage, this one included.
    long use_count() const { return storage_.use_count(); }

    // The tensor as a [rows, last] Eigen matrix (a scalar or 1-D tensor is one row).
    MatrixMap<T> matrix() { return MatrixMap<T>(data_, shape_.rows(), shape_.last()); }
    ConstMatrixMap<T> matrix() const { return ConstMatrixMap<T>(data_, shape_.rows(), shape_.last()); }
    Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> flat() { return {data_, numel()}; }
    Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> flat() const { return {data_, numel()}; }

private:
    void allocate(double max_oversize) {
        const std::size_t bytes = checked_bytes(shape_);
        detail::BufferCache::Block block;
        try {
            block = detail::BufferCache::instance().allocate(bytes, max_oversize);
        } catch (const std::bad_alloc&) {
            BITGRAD_CHECK(false,
                          "cannot allocate " << format_bytes(double(bytes)) << " for a tensor of shape " << shape_);
        }
        storage_ = std::shared_ptr<T>(static_cast<T*>(block.ptr),
                                      [block](T*) { detail::BufferCache::instance().release(block); });
        data_ = static_cast<T*>(block.ptr);
    }

    static std::size_t checked_bytes(const Shape& shape) {
        int64_t numel = 1, byte_count = 0;
        bool overflow = false;
        for (int i = 0; i < shape.ndim(); ++i) overflow |= __builtin_mul_overflow(numel, shape[i], &numel);
        overflow |= __builtin_mul_overflow(numel, int64_t(sizeof(T)), &byte_count);
        BITGRAD_CHECK(!overflow, "Tensor: shape " << shape << " needs more than 2^63 bytes");
        return std::size_t(byte_count);
    }

    int64_t offset(std::initializer_list<int64_t> index) const {
        BITGRAD_CHECK(int(index.size()) == ndim(), "at: " << index.size() << " indices for shape " << shape_);
        int64_t off = 0;
        int axis = 0;
        for (int64_t i : index) {
            BITGRAD_CHECK(0 <= i && i < shape_[axis],
                          "at: index " << i << " out of range on axis " << axis << " of shape " << shape_);
            off = off * shape_[axis++] + i;
        }
        return off;
    }

    std::shared_ptr<T> storage_;
    T* data_ = nullptr;
    Shape shape_;
};

// Largest |a - b| over two tensors of the same shape (for tests and benches).
template <class T>
double max_abs_diff(const Tensor<T>& a, const Tensor<T>& b) {
    BITGRAD_CHECK(a.shape() == b.shape(), "max_abs_diff: shapes " << a.shape() << " and " << b.shape());
    double m = 0;
    for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
    return m;
}

}  // namespace bitgrad
