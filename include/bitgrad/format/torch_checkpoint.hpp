#pragma once
// PyTorch state dicts in torch.save's format (pytorch_model.bin; FBI-LLM's released checkpoints),
// read and written without executing anything.
//
// The format (PyTorch >= 1.6). A zip archive whose entries are stored (no compression), all in one
// folder <archive>/ (torch uses the file name without its extension; "archive" for streams):
//   <archive>/data.pkl    the state dict, pickled (protocol 2 unless the caller chose another)
//   <archive>/byteorder   "little" (PyTorch >= 2.1; absent before, when the bytes are little-endian)
//   <archive>/data/<key>  the raw bytes of storage <key> ("0", "1", ...), written in sorted key order
//   <archive>/version     "3\n"
// torch's zip writer (miniz) starts every entry's bytes at a multiple of 64: the local header gets an
// extra field "FB" + length + 'Z's. Local headers hold no CRC or sizes (flag bit 3: a data
// descriptor follows the bytes), the central directory does, and ZIP64 records are always written
// (a size or offset >= 0xFFFFFFFF moves to a ZIP64 extra field; 64-bit data descriptor then).
// The pickle of a state dict:
//   OrderedDict([(name, torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
//                                                      requires_grad, backward_hooks)), ...])
//   storage = persistent_load(('storage', torch.FloatStorage, key, 'cpu', numel))
// names <archive>/data/<key>, numel elements of the class's dtype (Float F32, Half F16, BFloat16 BF16,
// Double F64, Long I64, Int I32, Short I16, Char I8, Byte U8, Bool BOOL); the tensor is the view of it
// at storage_offset with that size and stride (in elements). Tensors may share a storage (tied
// weights, slices); module.state_dict() adds OrderedDict._metadata (a BUILD, ignored here).
//
// Reading: TorchCheckpointReader maps the file, checks the zip directory (ZIP64 too; every offset and
// size against the file; stored entries only; no overlaps or duplicate names; the CRC-32 of data.pkl),
// then runs a pickle interpreter that knows only the opcodes of a state dict (protocols 2 to 5) and
// only the globals collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter and
// the storage classes above; any other global (os.system, ...) is refused by name, and nothing named
// in the file is ever called. Limits: 2^21 pickle objects (stack, marks and memo likewise). Every
// tensor is checked against its storage (offset + sum((size - 1) * stride) inside it, 64-bit
// overflow included) and each storage's size against its data entry. A view that repeats storage
// elements (stride 0, as expand() makes: 48 bytes in the file may read as gigabytes) is reported by
// expanded_view(), and gathering any strided view is checked against the memory limit first. A
// storage's CRC-32 is verified the first time one of its tensors is read (~2.5 GB/s, about a
// memcpy's cost; a 28 GB 7B file is not read twice). The top level must be a dict str -> tensor, or
// a dict holding one under "state_dict" or "model" (the other values then only have to be plain
// data: numbers, strings, lists, dicts, tensors).
//
// Writing: save_torch_state_dict writes what torch.save(OrderedDict(name -> tensor), path) of
// PyTorch 2.1 writes for contiguous tensors with storages of their own (later versions add
// .data/serialization_id, which torch.load does not need): the same entries, padding, data
// descriptors and ZIP64 records, and data.pkl byte for byte as CPython's pickler makes it (the test
// compares both with a file of torch 1.13, which differs only in having no byteorder entry).
// Atomically (write_file_atomic).
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "bitgrad/core/atomic_file.hpp"
#include "bitgrad/core/mapped_file.hpp"
#include "bitgrad/core/memory.hpp"
#include "bitgrad/core/shape.hpp"
#include "bitgrad/format/pickle.hpp"
#include "bitgrad/format/safetensors.hpp"
#include "bitgrad/format/zip.hpp"

namespace bitgrad::io {

// One tensor of a state dict: dtype a safetensors name, bytes its values contiguous (row-major),
// little-endian.
struct TorchTensor {
    std::string name, dtype;
    Shape shape;
    std::vector<uint8_t> bytes;
};

// A tensor that repeats elements of its storage: a stride of 0 on a dim of size > 1 (what torch's
// expand() makes), or more elements than the storage span it covers (overlapping strides; torch
// itself detects no more than this). Made contiguous, it can take far more bytes than its storage:
// 12 floats viewed as [40000, 40000] through stride 0 are 48 bytes in the file and 6.4 GB read.
struct TorchExpandedView {
    std::string file, name, storage;  // storage: its key in the file
    uint64_t storage_bytes = 0;       // the bytes of the storage it views
    Shape shape;
    uint64_t bytes = 0;  // made contiguous
    // "tensor w (a view of 48 bytes of storage 0 that expands to [40000, 40000], 6400000000 bytes)"
    std::string describe() const {
        std::ostringstream os;
        os << "tensor " << detail::printable(name) << " (a view of " << storage_bytes << " bytes of storage "
           << detail::printable(storage) << " that expands to " << shape << ", " << bytes << " bytes)";
        return os.str();
    }
};

// A validated, memory-mapped torch.save file (header comment). data() and read() may run on several
// threads at once (a storage read by two for the first time is then verified twice).
class TorchCheckpointReader {
public:
    struct Entry {
        std::string name, dtype;  // dtype: a safetensors name (F32, BF16, ...)
        Shape shape;
        std::vector<int64_t> stride;  // in elements, as stored: a view need not be contiguous
        uint64_t offset = 0;          // into the storage, in elements
        std::string storage;          // the storage key: entries with the same key share bytes
        uint64_t bytes() const { return uint64_t(shape.numel()) * safetensors_dtype_size(dtype); }
    };

    explicit TorchCheckpointReader(const std::string& path);

    const std::string& path() const { return file_->path(); }
    const std::string& archive() const { return archive_; }         // the folder of every entry
    const std::vector<Entry>& entries() const { return entries_; }  // in the state dict's order
    const Entry* find(const std::string& name) const {
        const auto it = index_.find(name);
        return it == index_.end() ? nullptr : &entries_[it->second];
    }
    const Entry& at(const std::string& name) const {
        const Entry* e = find(name);
        BITGRAD_CHECK(e, path() << ": tensor " << name << " is missing");
        return *e;
    }
    // Row-major with its storage's elements in order (size-1 dims aside): readable in place.
    static bool contiguous(const Entry& e) {
        int64_t expect = 1;
        for (int d = e.shape.ndim() - 1; d >= 0; --d) {
            if (e.shape[d] == 0) return true;
            if (e.shape[d] != 1 && e.stride[std::size_t(d)] != expect) return false;
            expect *= e.shape[d];
        }
        return true;
    }
    // What e expands to when it repeats storage elements (TorchExpandedView), else nullopt.
    std::optional<TorchExpandedView> expanded_view(const Entry& e) const;
    // The tensor's bytes, contiguous: a pointer into the mapped file when it is stored contiguously
    // (no copy), else `scratch` holding its elements gathered. The storage's CRC-32 is checked first.
    const uint8_t* data(const Entry& e, std::vector<uint8_t>& scratch) const;
    // A copy of the tensor's bytes (tensors sharing a storage each get their own).
    std::vector<uint8_t> read(const Entry& e) const {
        std::vector<uint8_t> scratch;
        const uint8_t* p = data(e, scratch);
        if (p == scratch.data()) return scratch;
        return {p, p + e.bytes()};
    }

private:
    struct Storage {
        std::string key, dtype;
        uint64_t numel = 0;
        detail::ZipEntry entry;
    };
    const Entry& own(const Entry& e) const {  // an Entry of this reader, whatever the caller passed
        const std::less<const Entry*> before;
        const bool mine = !before(&e, entries_.data()) && before(&e, entries_.data() + entries_.size());
        return mine ? e : at(e.name);
    }
    void verify(std::size_t s) const;

    std::shared_ptr<MappedFile> file_;
    std::string archive_;
    std::vector<Entry> entries_;
    std::map<std::string, std::size_t> index_;
    std::vector<Storage> storages_;
    std::map<std::string, std::size_t> storage_index_;
    std::unique_ptr<std::atomic<bool>[]> verified_;
};

inline TorchCheckpointReader::TorchCheckpointReader(const std::string& path)
    : file_(std::make_shared<MappedFile>(path)) {
    const uint8_t* d = file_->data();
    const std::vector<detail::ZipEntry> zip = detail::read_zip_directory(d, file_->size(), path);
    std::map<std::string, const detail::ZipEntry*> by_name;
    const detail::ZipEntry* pkl = nullptr;
    for (const auto& e : zip) {
        by_name[e.name] = &e;
        const auto slash = e.name.find('/');
        if (slash == std::string::npos || slash == 0 || e.name.compare(slash, std::string::npos, "/data.pkl") != 0)
            continue;
        BITGRAD_CHECK(!pkl, path << ": two pickles, " << detail::printable(pkl->name) << " and "
                                 << detail::printable(e.name) << ": expected one <archive>/data.pkl");
        pkl = &e;
    }
    BITGRAD_CHECK(pkl, path << ": no <archive>/data.pkl among its " << zip.size()
                            << " zip entries: not a file written by torch.save");
    archive_ = pkl->name.substr(0, pkl->name.find('/'));
    const std::string prefix = archive_ + "/";
    if (const auto it = by_name.find(prefix + "byteorder"); it != by_name.end()) {
        const std::string order(reinterpret_cast<const char*>(d + it->second->data),
                                std::size_t(std::min<uint64_t>(it->second->size, 16)));
        BITGRAD_CHECK(order == "little" && it->second->size == 6,
                      path << ": " << detail::printable(it->first) << " is \"" << detail::printable(order)
                           << "\", expected \"little\" (big-endian files are not read)");
    }
    const std::string where = path + ": " + detail::printable(pkl->name);
    const uint32_t crc = detail::crc32(d + pkl->data, pkl->size);
    BITGRAD_CHECK(crc == pkl->crc, where << ": CRC-32 " << std::hex << crc << " differs from the zip directory's "
                                         << pkl->crc << ": the file is damaged");

    auto load = [&](const std::string& cls, const std::string& key, int64_t numel) -> int64_t {
        const std::string dtype = detail::torch_storage_dtype(cls);
        if (const auto it = storage_index_.find(key); it != storage_index_.end()) {
            const Storage& s = storages_[it->second];
            BITGRAD_CHECK(s.dtype == dtype && s.numel == uint64_t(numel),
                          where << ": storage " << detail::printable(key) << " appears as " << numel << " x " << dtype
                                << " and as " << s.numel << " x " << s.dtype);
            return int64_t(it->second);
        }
        const auto it = by_name.find(prefix + "data/" + key);
        BITGRAD_CHECK(it != by_name.end(), where << ": storage " << detail::printable(key) << " has no data file "
                                                 << detail::printable(prefix + "data/" + key));
        const uint64_t item = safetensors_dtype_size(dtype);
        BITGRAD_CHECK(uint64_t(numel) <= (uint64_t(1) << 62) / item && it->second->size == uint64_t(numel) * item,
                      where << ": storage " << detail::printable(key) << " holds " << numel << " x " << dtype
                            << ", but " << detail::printable(it->first) << " has " << it->second->size << " bytes");
        storages_.push_back({key, dtype, uint64_t(numel), *it->second});
        storage_index_[key] = storages_.size() - 1;
        return int64_t(storages_.size() - 1);
    };
    detail::PickleMachine machine(d + pkl->data, pkl->size, where, load);
    const detail::PyObj* top = machine.run();

    // The state dict: the top-level dict, or the one under "state_dict" / "model".
    auto first_non_tensor = [](const detail::PyObj* dict) -> std::size_t {
        for (std::size_t i = 0; i < dict->items.size(); i += 2)
            if (dict->items[i]->kind != detail::PyObj::Str || dict->items[i + 1]->kind != detail::PyObj::Tensor)
                return i;
        return dict->items.size();
    };
    BITGRAD_CHECK(top->kind == detail::PyObj::Dict,
                  where << ": the pickle holds " << detail::py_kind_name(top->kind) << ", expected a state dict");
    const detail::PyObj* dict = top;
    if (const std::size_t bad = first_non_tensor(top); bad < top->items.size()) {
        dict = nullptr;
        for (const char* key : {"state_dict", "model"})
            for (std::size_t i = 0; !dict && i < top->items.size(); i += 2)
                if (top->items[i]->kind == detail::PyObj::Str && top->items[i]->s == key &&
                    top->items[i + 1]->kind == detail::PyObj::Dict &&
                    first_non_tensor(top->items[i + 1]) == top->items[i + 1]->items.size())
                    dict = top->items[i + 1];
        const detail::PyObj* k = top->items[bad];
        const std::string key = k->kind == detail::PyObj::Str
                                    ? "\"" + detail::printable(k->s) + "\""
                                    : std::string("(a key that is ") + detail::py_kind_name(k->kind) + ")";
        BITGRAD_CHECK(dict, where << ": entry " << key << " holds " << detail::py_kind_name(top->items[bad + 1]->kind)
                                  << ": expected a state dict (str -> tensor), or a dict holding one under "
                                     "\"state_dict\" or \"model\"");
    }

    for (std::size_t i = 0; i < dict->items.size(); i += 2) {
        const std::string& name = dict->items[i]->s;
        const auto& t = machine.tensors()[std::size_t(dict->items[i + 1]->i)];
        const Storage& s = storages_[std::size_t(t.storage)];
        const std::string what = where + ": tensor " + detail::printable(name);
        BITGRAD_CHECK(t.size.size() <= std::size_t(kMaxDims),
                      what << " has " << t.size.size() << " dims, more than bitgrad's " << kMaxDims);
        Entry e;
        e.name = name;
        e.dtype = s.dtype;
        e.stride = t.stride;
        e.offset = uint64_t(t.offset);
        e.storage = s.key;
        // numel and bytes bounded by 2^62, zero extents included; then the last element reached
        // (offset + sum((size - 1) * stride)) must lie inside the storage.
        const uint64_t cap = uint64_t(1) << 62, item = safetensors_dtype_size(s.dtype);
        uint64_t nonzero = 1, last = e.offset;
        bool empty = false;
        for (std::size_t k = 0; k < t.size.size(); ++k) {
            const auto n = uint64_t(t.size[k]), stride = uint64_t(t.stride[k]);
            BITGRAD_CHECK(n <= cap && (n == 0 || nonzero <= cap / n), what << ": its size has more than 2^62 elements");
            BITGRAD_CHECK(n == 0 || stride == 0 || (n - 1 <= cap / stride && last <= cap - (n - 1) * stride),
                          what << ": size x stride overflows (dim " << k << ": " << n << " x " << stride << ")");
            if (n == 0) {
                empty = true;
            } else {
                nonzero *= n;
                last += (n - 1) * stride;
            }
            e.shape.push_back(int64_t(n));
        }
        BITGRAD_CHECK(nonzero <= cap / item, what << ": shape " << e.shape << " needs more than 2^62 bytes");
        BITGRAD_CHECK(empty ? e.offset <= s.numel : last < s.numel,
                      what << " (offset " << e.offset << ", shape " << e.shape << ") reaches element "
                           << (empty ? e.offset : last) << " of storage " << detail::printable(s.key)
                           << ", which holds " << s.numel << " elements");
        BITGRAD_CHECK(index_.emplace(name, entries_.size()).second, what << " appears twice in the state dict");
        entries_.push_back(std::move(e));
    }
    verified_ = std::make_unique<std::atomic<bool>[]>(storages_.size());
}

inline void TorchCheckpointReader::verify(std::size_t s) const {
    if (verified_[s].load(std::memory_order_acquire)) return;
    const detail::ZipEntry& z = storages_[s].entry;
    const uint32_t crc = detail::crc32(file_->data() + z.data, z.size);
    BITGRAD_CHECK(crc == z.crc, path() << ": " << detail::printable(z.name) << ": CRC-32 " << std::hex << crc
                                       << " differs from the zip directory's " << z.crc << ": the file is damaged");
    verified_[s].store(true, std::memory_order_release);
}

inline std::optional<TorchExpandedView> TorchCheckpointReader::expanded_view(const Entry& entry) const {
    const Entry& e = own(entry);
    const uint64_t numel = uint64_t(e.shape.numel());
    if (numel == 0) return std::nullopt;
    uint64_t span = 1;  // elements from the first reached to the last, both included (checked at load)
    bool zero_stride = false;
    for (int d = 0; d < e.shape.ndim(); ++d) {
        span += uint64_t(e.shape[d] - 1) * uint64_t(e.stride[std::size_t(d)]);
        zero_stride |= e.shape[d] > 1 && e.stride[std::size_t(d)] == 0;
    }
    if (!zero_stride && numel <= span) return std::nullopt;
    const Storage& s = storages_[storage_index_.at(e.storage)];
    return TorchExpandedView{path(), e.name, s.key, s.numel * safetensors_dtype_size(s.dtype), e.shape, e.bytes()};
}

inline const uint8_t* TorchCheckpointReader::data(const Entry& entry, std::vector<uint8_t>& scratch) const {
    const Entry& e = own(entry);
    const std::size_t s = storage_index_.at(e.storage);
    verify(s);
    const uint64_t item = safetensors_dtype_size(e.dtype);
    const uint8_t* base = file_->data() + storages_[s].entry.data;
    if (contiguous(e)) return base + e.offset * item;
    // A strided view (a transposed or sliced tensor saved as it was): gather its elements in order.
    const uint64_t numel = uint64_t(e.shape.numel());
    const auto expanded = expanded_view(e);
    require_memory(numel * item, path() + ": " + (expanded ? expanded->describe() : "tensor " + e.name));
    scratch.resize(std::size_t(numel * item));
    const std::vector<int64_t> size = e.shape.vec();
    const int nd = int(size.size());
    std::array<int64_t, kMaxDims> index{};
    uint64_t src = e.offset;
    for (uint64_t k = 0; k < numel; ++k) {
        std::memcpy(scratch.data() + k * item, base + src * item, std::size_t(item));
        for (int d = nd - 1; d >= 0; --d) {
            if (++index[std::size_t(d)] < size[std::size_t(d)]) {
                src += uint64_t(e.stride[std::size_t(d)]);
                break;
            }
            src -= uint64_t(size[std::size_t(d)] - 1) * uint64_t(e.stride[std::size_t(d)]);
            index[std::size_t(d)] = 0;
        }
    }
    return scratch.data();
}

// Every tensor of a torch.save file, in the state dict's order, each with its own bytes.
inline std::vector<TorchTensor> load_torch_state_dict(const std::string& path) {
    const TorchCheckpointReader reader(path);
    uint64_t total = 0;
    for (const auto& e : reader.entries()) total = std::min(total + e.bytes(), uint64_t(1) << 62);  // each <= 2^62
    require_memory(total, path + ": its tensors");
    std::vector<TorchTensor> out;
    for (const auto& e : reader.entries()) out.push_back({e.name, e.dtype, e.shape, reader.read(e)});
    return out;
}

namespace detail {

inline std::string torch_state_dict_pickle(const std::vector<SafetensorsBlob>& tensors) {
    TorchPickleWriter w;
    w.out = "\x80\x02";  // PROTO 2
    w.global("collections", "OrderedDict");
    w.op(')');
    w.op('R');
    w.memoize();
    for (std::size_t batch = 0; batch < tensors.size(); batch += 1000) {
        const std::size_t n = std::min<std::size_t>(1000, tensors.size() - batch);
        if (n > 1) w.op('(');
        for (std::size_t i = batch; i < batch + n; ++i) {
            const SafetensorsBlob& t = tensors[i];
            const std::vector<int64_t> size = t.shape.vec();
            std::vector<int64_t> stride(size.size());
            for (std::size_t d = size.size(), s = 1; d-- > 0;) {  // torch's contiguous strides: extents 0 count as 1
                stride[d] = int64_t(s);
                s *= std::size_t(std::max<int64_t>(size[d], 1));
            }
            w.str(t.name);
            w.global("torch._utils", "_rebuild_tensor_v2");
            w.op('(');  // its arguments
            w.op('(');  // the persistent id
            w.once("str storage", [&] { w.out += std::string("X\x07\0\0\0storage", 12); });
            w.global("torch", torch_storage_class(t.dtype));
            w.str(std::to_string(i));
            w.once("str cpu", [&] { w.out += std::string("X\x03\0\0\0cpu", 8); });
            w.integer(t.shape.numel());
            w.op('t');
            w.memoize();
            w.op('Q');          // BINPERSID
            w.integer(0);       // storage offset
            w.int_tuple(size);  // size
            w.int_tuple(stride);
            w.op('\x89');  // requires_grad False
            w.global("collections", "OrderedDict");
            w.op(')');
            w.op('R');  // backward_hooks: OrderedDict()
            w.memoize();
            w.op('t');
            w.memoize();
            w.op('R');
            w.memoize();
        }
        w.op(n > 1 ? 'u' : 's');
    }
    w.op('.');
    return std::move(w.out);
}

// torch's archive name: the file name up to its last '.'; "archive" if that is empty or the path is
// not ASCII (torch then writes through a stream).
inline std::string torch_archive_name(const std::filesystem::path& path) {
    const std::string full = path.string(), file = path.filename().string();
    const std::string base = file.substr(0, file.rfind('.'));
    const bool ascii = std::all_of(full.begin(), full.end(), [](char c) { return uint8_t(c) < 0x80; });
    return base.empty() || !ascii ? "archive" : base;
}

}  // namespace detail

// Writes tensors (each contiguous, of any safetensors dtype, names unique) as torch.save(OrderedDict)
// would, atomically. torch.load(path, weights_only=True) reads it.
inline void save_torch_state_dict(const std::filesystem::path& path, const std::vector<SafetensorsBlob>& tensors) {
    std::set<std::string> names;
    for (const auto& t : tensors) {
        const std::string what = "save_torch_state_dict " + path.string() + ": tensor " + detail::printable(t.name);
        BITGRAD_CHECK(names.insert(t.name).second, what << " appears twice");
        BITGRAD_CHECK(detail::valid_utf8(reinterpret_cast<const uint8_t*>(t.name.data()), t.name.size()),
                      what << ": the name is not valid UTF-8");
        BITGRAD_CHECK(
            detail::torch_storage_class(t.dtype),
            what << ": unknown dtype " << t.dtype << " (expected one of F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL)");
        const uint64_t item = safetensors_dtype_size(t.dtype);
        BITGRAD_CHECK(uint64_t(t.shape.numel()) <= (uint64_t(1) << 62) / item &&
                          t.bytes == uint64_t(t.shape.numel()) * item && (t.data || t.bytes == 0),
                      what << ": " << t.bytes << " bytes for shape " << t.shape << " of " << t.dtype);
    }
    const std::string pickle = detail::torch_state_dict_pickle(tensors);
    std::vector<std::string> keys;  // torch writes the storages in the order of their keys as strings
    for (std::size_t i = 0; i < tensors.size(); ++i) keys.push_back(std::to_string(i));
    std::sort(keys.begin(), keys.end());
    write_file_atomic(path, [&](int fd, const std::string& tmp) {
        detail::TorchZipWriter zip(fd, tmp, detail::torch_archive_name(path));
        zip.add("data.pkl", pickle.data(), pickle.size());
        zip.add("byteorder", "little", 6);
        for (const std::string& key : keys) {
            const SafetensorsBlob& t = tensors[std::stoul(key)];
            zip.add("data/" + key, t.data, t.bytes);
        }
        zip.add("version", "3\n", 2);
        zip.finish();
    });
}

}  // namespace bitgrad::io
