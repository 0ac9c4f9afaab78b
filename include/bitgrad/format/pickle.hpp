#pragma once
// The pickle subset a PyTorch state dict uses, run without executing anything: PickleMachine knows
// only the opcodes a state dict needs and only its globals (collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 / _rebuild_parameter, torch's storage classes); any other global
// is refused by name. TorchPickleWriter writes the pickle torch.save makes, byte for byte.
// io/torch_checkpoint.hpp describes the format and uses both.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bitgrad/core/error.hpp"
#include "bitgrad/format/zip.hpp"

namespace bitgrad::io::detail {

inline bool valid_utf8(const uint8_t* p, uint64_t n) {
    for (uint64_t i = 0; i < n;) {
        const uint8_t c = p[i];
        const int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || n - i < uint64_t(len)) return false;
        uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (int k = 1; k < len; ++k) {
            if ((p[i + k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += uint64_t(len);
    }
    return true;
}

// torch's storage classes and the safetensors dtype of their elements.
struct TorchStorageType {
    const char* cls;
    const char* dtype;
};
inline constexpr TorchStorageType kTorchStorageTypes[] = {
    {"FloatStorage", "F32"}, {"HalfStorage", "F16"}, {"BFloat16Storage", "BF16"}, {"DoubleStorage", "F64"},
    {"LongStorage", "I64"},  {"IntStorage", "I32"},  {"ShortStorage", "I16"},     {"CharStorage", "I8"},
    {"ByteStorage", "U8"},   {"BoolStorage", "BOOL"}};
inline const char* torch_storage_dtype(const std::string& cls) {
    for (const auto& t : kTorchStorageTypes)
        if (cls == t.cls) return t.dtype;
    return nullptr;
}
inline const char* torch_storage_class(const std::string& dtype) {
    for (const auto& t : kTorchStorageTypes)
        if (dtype == t.dtype) return t.cls;
    return nullptr;
}

// ---- pickle: the subset a state dict uses ----

inline constexpr std::size_t kTorchPickleMaxObjects = std::size_t(1) << 21;

struct PyObj {
    enum Kind : uint8_t { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor };
    Kind kind = None;
    int64_t i = 0;              // Bool, Int; Storage, Tensor: index into the machine's storages / tensors
    double f = 0;               // Float
    std::string s;              // Str; Global: "module.name"
    std::vector<PyObj*> items;  // Tuple, List; Dict: key0, value0, key1, value1, ...
};

inline const char* py_kind_name(PyObj::Kind k) {
    static constexpr const char* names[] = {"None",   "a bool", "an int",   "a float",   "a str",   "a tuple",
                                            "a list", "a dict", "a global", "a storage", "a tensor"};
    return names[k];
}

// Runs a pickle of a state dict. Objects live in an arena (no recursion to free deep or cyclic
// structures); persistent_load(storage class, key, numel) returns the storage's index.
// Messages are built only on failure: where_ (file and entry), the opcode's offset, then msg.
#define BITGRAD_PICKLE_CHECK(cond, msg) BITGRAD_CHECK(cond, where_ << " at byte " << at_ << ": " << msg)

class PickleMachine {
public:
    struct TensorRef {
        int64_t storage = 0, offset = 0;
        std::vector<int64_t> size, stride;
    };
    using PersistentLoad = std::function<int64_t(const std::string& cls, const std::string& key, int64_t numel)>;

    PickleMachine(const uint8_t* data, uint64_t size, std::string where, PersistentLoad load)
        : d_(data), n_(size), where_(std::move(where)), load_(std::move(load)) {
        none_ = make(PyObj::None);
        true_ = make(PyObj::Bool);
        true_->i = 1;
        false_ = make(PyObj::Bool);
    }

    // The object STOP returns.
    const PyObj* run() {
        for (;;) {
            at_ = pos_;
            BITGRAD_PICKLE_CHECK(pos_ < n_, "the pickle ends before its STOP opcode (truncated)");
            const uint8_t op = d_[pos_++];
            switch (op) {
                case 0x80: {  // PROTO
                    const uint64_t proto = u(1);
                    BITGRAD_PICKLE_CHECK(proto >= 2 && proto <= 5,
                                         "pickle protocol " + std::to_string(proto) + ", expected 2 to 5");
                    break;
                }
                case 0x95: {  // FRAME: a length hint
                    const uint64_t len = u(8);
                    BITGRAD_PICKLE_CHECK(len <= n_ - pos_,
                                         "FRAME of " + std::to_string(len) + " bytes runs past the pickle");
                    break;
                }
                case '.':  // STOP
                    BITGRAD_PICKLE_CHECK(stack_.size() == 1 && marks_.empty(),
                                         "STOP with " + std::to_string(stack_.size()) + " objects and " +
                                             std::to_string(marks_.size()) +
                                             " marks on the stack, expected one object");
                    return stack_[0];
                case '(':  // MARK
                    BITGRAD_PICKLE_CHECK(stack_.size() + marks_.size() < kTorchPickleMaxObjects, "too many marks");
                    marks_.push_back(stack_.size());
                    break;
                case '}': push(make(PyObj::Dict)); break;
                case ']': push(make(PyObj::List)); break;
                case ')': push(make(PyObj::Tuple)); break;
                case 't': {  // TUPLE
                    PyObj* t = make(PyObj::Tuple);
                    t->items = pop_mark();
                    push(t);
                    break;
                }
                case 0x85:
                case 0x86:
                case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
                    const std::size_t k = op - 0x84u;
                    BITGRAD_PICKLE_CHECK(stack_.size() >= floor() + k,
                                         "TUPLE" + std::to_string(k) + " on a stack of fewer objects");
                    PyObj* t = make(PyObj::Tuple);
                    t->items.assign(stack_.end() - std::ptrdiff_t(k), stack_.end());
                    stack_.resize(stack_.size() - k);
                    push(t);
                    break;
                }
                case 'J': push(integer(int32_t(uint32_t(u(4))))); break;  // BININT
                case 'K': push(integer(int64_t(u(1)))); break;            // BININT1
                case 'M': push(integer(int64_t(u(2)))); break;            // BININT2
                case 0x8a: {                                              // LONG1
                    const int len = int(u(1));
                    BITGRAD_PICKLE_CHECK(len <= 8,
                                         "an integer of " + std::to_string(len) + " bytes (more than 64 bits)");
                    uint64_t v = u(len);
                    if (len > 0 && len < 8 && (v >> (8 * len - 1)) & 1) v |= ~uint64_t(0) << (8 * len);
                    push(integer(int64_t(v)));
                    break;
                }
                case 'N': push(none_); break;
                case 0x88: push(true_); break;
                case 0x89: push(false_); break;
                case 'X': push(str(u(4))); break;   // BINUNICODE
                case 0x8c: push(str(u(1))); break;  // SHORT_BINUNICODE
                case 0x8d: push(str(u(8))); break;  // BINUNICODE8
                case 'U': push(str(u(1))); break;   // SHORT_BINSTRING
                case 'T': {                         // BINSTRING (signed length)
                    const uint64_t len = u(4);
                    BITGRAD_PICKLE_CHECK(len < 0x80000000u, "BINSTRING with a negative length");
                    push(str(len));
                    break;
                }
                case 'G': {  // BINFLOAT, big-endian
                    uint64_t bits = 0;
                    for (int k = 0; k < 8; ++k) bits = bits << 8 | u(1);
                    PyObj* f = make(PyObj::Float);
                    std::memcpy(&f->f, &bits, 8);
                    push(f);
                    break;
                }
                case 'q': put(u(1)); break;           // BINPUT
                case 'r': put(u(4)); break;           // LONG_BINPUT
                case 0x94: put(memo_.size()); break;  // MEMOIZE
                case 'h': push(get(u(1))); break;     // BINGET
                case 'j': push(get(u(4))); break;     // LONG_BINGET
                case 'c': {                           // GLOBAL "module\nname\n"
                    const std::string module = line(), name = line();
                    push(global(module, name));
                    break;
                }
                case 0x93: {  // STACK_GLOBAL
                    PyObj* name = pop();
                    PyObj* module = pop();
                    BITGRAD_PICKLE_CHECK(name->kind == PyObj::Str && module->kind == PyObj::Str,
                                         "STACK_GLOBAL of non-strings");
                    push(global(module->s, name->s));
                    break;
                }
                case 'Q': push(persistent_load(pop())); break;  // BINPERSID
                case 'R': {                                     // REDUCE
                    PyObj* args = pop();
                    PyObj* fn = pop();
                    push(reduce(fn, args));
                    break;
                }
                case 'b': {  // BUILD: only OrderedDict's state (its _metadata), which is ignored
                    PyObj* state = pop();
                    BITGRAD_PICKLE_CHECK(
                        top()->kind == PyObj::Dict && (state->kind == PyObj::Dict || state->kind == PyObj::None),
                        std::string("BUILD of ") + py_kind_name(top()->kind) + " with " + py_kind_name(state->kind) +
                            " (only a dict's attributes are accepted, and ignored)");
                    break;
                }
                case 's': {  // SETITEM
                    PyObj* v = pop();
                    PyObj* k = pop();
                    PyObj* dict = top();
                    BITGRAD_PICKLE_CHECK(dict->kind == PyObj::Dict,
                                         std::string("SETITEM on ") + py_kind_name(dict->kind));
                    dict->items.insert(dict->items.end(), {k, v});
                    break;
                }
                case 'u': {  // SETITEMS
                    std::vector<PyObj*> kv = pop_mark();
                    PyObj* dict = top();
                    BITGRAD_PICKLE_CHECK(dict->kind == PyObj::Dict && kv.size() % 2 == 0,
                                         std::string("SETITEMS on ") + py_kind_name(dict->kind) + " with " +
                                             std::to_string(kv.size()) + " objects");
                    dict->items.insert(dict->items.end(), kv.begin(), kv.end());
                    break;
                }
                case 'a': {  // APPEND
                    PyObj* v = pop();
                    BITGRAD_PICKLE_CHECK(top()->kind == PyObj::List,
                                         std::string("APPEND to ") + py_kind_name(top()->kind));
                    top()->items.push_back(v);
                    break;
                }
                case 'e': {  // APPENDS
                    std::vector<PyObj*> vs = pop_mark();
                    BITGRAD_PICKLE_CHECK(top()->kind == PyObj::List,
                                         std::string("APPENDS to ") + py_kind_name(top()->kind));
                    top()->items.insert(top()->items.end(), vs.begin(), vs.end());
                    break;
                }
                default: {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "0x%02x", op);
                    BITGRAD_PICKLE_CHECK(false,
                                         std::string("opcode ") + buf +
                                             (op >= 0x20 && op < 0x7f ? std::string(" ('") + char(op) + "')" : "") +
                                             " is not one a state dict uses");
                }
            }
        }
    }

    const std::vector<TensorRef>& tensors() const { return tensors_; }

private:
    uint64_t u(int len) {
        BITGRAD_PICKLE_CHECK(n_ - pos_ >= uint64_t(len), "the pickle ends inside an opcode's argument (truncated)");
        const uint64_t v = le(d_ + pos_, len);
        pos_ += uint64_t(len);
        return v;
    }
    std::string line() {
        const auto* nl = static_cast<const uint8_t*>(std::memchr(d_ + pos_, '\n', std::size_t(n_ - pos_)));
        BITGRAD_PICKLE_CHECK(nl != nullptr, "GLOBAL without its newline (truncated)");
        std::string s(reinterpret_cast<const char*>(d_ + pos_), std::size_t(nl - (d_ + pos_)));
        pos_ = uint64_t(nl - d_) + 1;
        return s;
    }
    PyObj* make(PyObj::Kind kind) {
        BITGRAD_PICKLE_CHECK(
            arena_.size() < kTorchPickleMaxObjects,
            "more than " + std::to_string(kTorchPickleMaxObjects) + " objects (a state dict needs far fewer)");
        arena_.emplace_back();
        arena_.back().kind = kind;
        return &arena_.back();
    }
    PyObj* integer(int64_t v) {
        PyObj* o = make(PyObj::Int);
        o->i = v;
        return o;
    }
    PyObj* str(uint64_t len) {
        BITGRAD_PICKLE_CHECK(len <= n_ - pos_,
                             "a string of " + std::to_string(len) + " bytes runs past the pickle's end");
        BITGRAD_PICKLE_CHECK(valid_utf8(d_ + pos_, len), "a string that is not valid UTF-8");
        PyObj* o = make(PyObj::Str);
        o->s.assign(reinterpret_cast<const char*>(d_ + pos_), std::size_t(len));
        pos_ += len;
        return o;
    }
    std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
    void push(PyObj* o) {
        BITGRAD_PICKLE_CHECK(stack_.size() + marks_.size() < kTorchPickleMaxObjects, "the stack grows past its limit");
        stack_.push_back(o);
    }
    PyObj* top() {
        BITGRAD_PICKLE_CHECK(stack_.size() > floor(),
                             "an opcode needs an object, but the stack is empty (above its mark)");
        return stack_.back();
    }
    PyObj* pop() {
        PyObj* o = top();
        stack_.pop_back();
        return o;
    }
    std::vector<PyObj*> pop_mark() {
        BITGRAD_PICKLE_CHECK(!marks_.empty(), "an opcode needs a MARK, but there is none");
        const std::size_t m = marks_.back();
        marks_.pop_back();
        std::vector<PyObj*> items(stack_.begin() + std::ptrdiff_t(m), stack_.end());
        stack_.resize(m);
        return items;
    }
    void put(uint64_t index) {
        BITGRAD_PICKLE_CHECK(memo_.count(index) || memo_.size() < kTorchPickleMaxObjects,
                             "the memo grows past its limit");
        memo_[index] = top();
    }
    PyObj* get(uint64_t index) {
        const auto it = memo_.find(index);
        BITGRAD_PICKLE_CHECK(it != memo_.end(), "memo index " + std::to_string(index) + " is not set (the memo holds " +
                                                    std::to_string(memo_.size()) + " entries)");
        return it->second;
    }

    PyObj* global(const std::string& module, const std::string& name) {
        const std::string full = module + "." + name;
        const bool ok = full == "collections.OrderedDict" || full == "torch._utils._rebuild_tensor_v2" ||
                        full == "torch._utils._rebuild_parameter" ||
                        (module == "torch" && torch_storage_dtype(name) != nullptr);
        BITGRAD_PICKLE_CHECK(ok, "global " + printable(full) +
                                     " is not allowed in a state dict (allowed: collections.OrderedDict, "
                                     "torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, "
                                     "torch.{Float,Half,BFloat16,Double,Long,Int,Short,Char,Byte,Bool}Storage)");
        PyObj* g = make(PyObj::Global);
        g->s = full;
        return g;
    }

    // ('storage', torch.<X>Storage, key, location, numel); the location ('cpu', 'cuda:0') is ignored.
    PyObj* persistent_load(const PyObj* pid) {
        const auto& a = pid->items;
        BITGRAD_PICKLE_CHECK(pid->kind == PyObj::Tuple && a.size() == 5 && a[0]->kind == PyObj::Str &&
                                 a[0]->s == "storage" && a[1]->kind == PyObj::Global &&
                                 a[1]->s.rfind("torch.", 0) == 0 && torch_storage_dtype(a[1]->s.substr(6)) &&
                                 a[2]->kind == PyObj::Str && a[3]->kind == PyObj::Str && a[4]->kind == PyObj::Int &&
                                 a[4]->i >= 0,
                             "a persistent id that is not ('storage', torch.<X>Storage, key, location, numel >= 0)");
        PyObj* s = make(PyObj::Storage);
        s->i = load_(a[1]->s.substr(6), a[2]->s, a[4]->i);
        return s;
    }

    static bool int_tuple(const PyObj* t) {
        if (t->kind != PyObj::Tuple) return false;
        for (const PyObj* v : t->items)
            if (v->kind != PyObj::Int || v->i < 0) return false;
        return true;
    }

    PyObj* reduce(const PyObj* fn, const PyObj* args) {
        BITGRAD_PICKLE_CHECK(fn->kind == PyObj::Global && args->kind == PyObj::Tuple,
                             std::string("REDUCE of ") + py_kind_name(fn->kind) + " with " + py_kind_name(args->kind));
        const auto& a = args->items;
        if (fn->s == "collections.OrderedDict") {
            BITGRAD_PICKLE_CHECK(a.empty(), "collections.OrderedDict called with arguments (expected none)");
            return make(PyObj::Dict);
        }
        if (fn->s == "torch._utils._rebuild_tensor_v2") {
            BITGRAD_PICKLE_CHECK(
                (a.size() == 6 || a.size() == 7) && a[0]->kind == PyObj::Storage && a[1]->kind == PyObj::Int &&
                    a[1]->i >= 0 && int_tuple(a[2]) && int_tuple(a[3]) && a[2]->items.size() == a[3]->items.size() &&
                    a[4]->kind == PyObj::Bool && a[5]->kind == PyObj::Dict &&
                    (a.size() == 6 || a[6]->kind == PyObj::Dict),
                "_rebuild_tensor_v2 called with arguments that are not (storage, offset >= 0, size, stride "
                "(tuples of equal length of ints >= 0), requires_grad, backward_hooks[, metadata])");
            TensorRef t;
            t.storage = a[0]->i;
            t.offset = a[1]->i;
            for (const PyObj* v : a[2]->items) t.size.push_back(v->i);
            for (const PyObj* v : a[3]->items) t.stride.push_back(v->i);
            tensors_.push_back(std::move(t));
            PyObj* o = make(PyObj::Tensor);
            o->i = int64_t(tensors_.size() - 1);
            return o;
        }
        if (fn->s == "torch._utils._rebuild_parameter") {
            BITGRAD_PICKLE_CHECK(
                a.size() == 3 && a[0]->kind == PyObj::Tensor && a[1]->kind == PyObj::Bool && a[2]->kind == PyObj::Dict,
                "_rebuild_parameter called with arguments that are not (tensor, requires_grad, backward_hooks)");
            return a[0];
        }
        BITGRAD_PICKLE_CHECK(false, "global " + fn->s + " cannot be called");
        return nullptr;
    }

    const uint8_t* d_;
    uint64_t n_, pos_ = 0, at_ = 0;
    std::string where_;
    PersistentLoad load_;
    std::deque<PyObj> arena_;
    std::vector<PyObj*> stack_;
    std::vector<std::size_t> marks_;
    std::unordered_map<uint64_t, PyObj*> memo_;
    std::vector<TensorRef> tensors_;
    PyObj *none_ = nullptr, *true_ = nullptr, *false_ = nullptr;
};

#undef BITGRAD_PICKLE_CHECK

// The pickle torch.save makes of OrderedDict(name -> tensor) when each tensor is contiguous with a
// storage of its own (keys "0", "1", ... in order), opcode for opcode and memo index for memo index
// as CPython's pickler (protocol 2) writes it: strings and tuples are memoized (empty tuples are
// not), a global or string met again is a BINGET, items go in batches of 1000 (SETITEMS; SETITEM
// for a batch of one).
class TorchPickleWriter {
public:
    std::string out;

    void op(char c) { out += c; }
    uint32_t memoize() {
        if (memo_ < 256) {
            op('q');
            put_le(out, memo_, 1);
        } else {
            op('r');
            put_le(out, memo_, 4);
        }
        return memo_++;
    }
    void get(uint32_t index) {
        if (index < 256) {
            op('h');
            put_le(out, index, 1);
        } else {
            op('j');
            put_le(out, index, 4);
        }
    }
    // The memo index of a global or a string saved once, then fetched again.
    void once(const std::string& id, const std::function<void()>& first) {
        if (const auto it = seen_.find(id); it != seen_.end()) return get(it->second);
        first();
        seen_[id] = memoize();
    }
    void global(const std::string& module, const std::string& name) {
        once("global " + module + "." + name, [&] { out += "c" + module + "\n" + name + "\n"; });
    }
    void str(const std::string& s) {  // BINUNICODE, memoized
        op('X');
        put_le(out, s.size(), 4);
        out += s;
        memoize();
    }
    void integer(int64_t v) {
        if (v >= 0 && v <= 0xff) {
            op('K');
            put_le(out, uint64_t(v), 1);
        } else if (v >= 0 && v <= 0xffff) {
            op('M');
            put_le(out, uint64_t(v), 2);
        } else if (v >= -0x80000000ll && v <= 0x7fffffffll) {
            op('J');
            put_le(out, uint64_t(v), 4);
        } else {  // LONG1: little-endian two's complement, as few bytes as keep the sign
            int n = 8;
            while (n > 1 && ((v >> (8 * (n - 1) - 1)) == 0 || (v >> (8 * (n - 1) - 1)) == -1)) --n;
            op('\x8a');
            put_le(out, uint64_t(n), 1);
            put_le(out, uint64_t(v), n);
        }
    }
    void int_tuple(const std::vector<int64_t>& v) {
        if (v.empty()) return op(')');
        if (v.size() > 3) op('(');
        for (int64_t x : v) integer(x);
        op(v.size() == 1 ? '\x85' : v.size() == 2 ? '\x86' : v.size() == 3 ? '\x87' : 't');
        memoize();
    }

private:
    uint32_t memo_ = 0;
    std::map<std::string, uint32_t> seen_;
};

}  // namespace bitgrad::io::detail
