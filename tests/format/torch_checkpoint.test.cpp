// PyTorch state dicts (format/torch_checkpoint.hpp): files written by real torch.save (tests/format/torch_fixtures,
// made by scripts/make_torch_fixtures.py, whose formulas are recomputed here value by value), the
// writer against torch's bytes and through the reader, then hostile and damaged files, each refused
// naming what is wrong.
#include <sys/resource.h>

#include "../core/child_process.hpp"
#include "helpers.hpp"

#include <bitgrad/format/torch_checkpoint.hpp>
#include <bitgrad/io/hf_checkpoint.hpp>

#include <cstring>

using namespace bitgrad;
using namespace std::string_literals;  // pickles hold NUL bytes: never build them from a const char*

namespace {

const std::filesystem::path kFixtures = std::filesystem::path(__FILE__).parent_path() / "torch_fixtures";

std::string fixture(const std::string& name) { return (kFixtures / name).string(); }

// The values of a tensor's bytes as doubles (every dtype of the fixtures is exact in a double).
std::vector<double> values(const std::string& dtype, const std::vector<uint8_t>& b) {
    std::vector<double> v;
    const uint64_t item = io::safetensors_dtype_size(dtype);
    REQUIRE(item > 0);
    REQUIRE(b.size() % item == 0);
    for (std::size_t i = 0; i < b.size(); i += item) {
        const uint8_t* p = b.data() + i;
        uint64_t bits = 0;
        std::memcpy(&bits, p, std::size_t(item));
        if (dtype == "F32") {
            float f;
            std::memcpy(&f, p, 4);
            v.push_back(f);
        } else if (dtype == "F64") {
            double f;
            std::memcpy(&f, p, 8);
            v.push_back(f);
        } else if (dtype == "BF16") {
            v.push_back(to_float(bf16{uint16_t(bits)}));
        } else if (dtype == "F16") {
            v.push_back(to_float(fp16{uint16_t(bits)}));
        } else if (dtype == "I64") {
            v.push_back(double(int64_t(bits)));
        } else if (dtype == "I32") {
            v.push_back(double(int32_t(uint32_t(bits))));
        } else if (dtype == "I16") {
            v.push_back(double(int16_t(uint16_t(bits))));
        } else if (dtype == "I8") {
            v.push_back(double(int8_t(uint8_t(bits))));
        } else {  // U8, BOOL
            v.push_back(double(bits));
        }
    }
    return v;
}

std::vector<double> formula(int64_t n, const std::function<double(int64_t)>& f) {
    std::vector<double> v;
    for (int64_t k = 0; k < n; ++k) v.push_back(f(k));
    return v;
}

const io::TorchTensor& tensor(const std::vector<io::TorchTensor>& ts, const std::string& name) {
    for (const auto& t : ts)
        if (t.name == name) return t;
    FAIL("no tensor " << name);
    return ts.front();
}

void check_tensor(const std::vector<io::TorchTensor>& ts, const std::string& name, const std::string& dtype,
                  const Shape& shape, const std::function<double(int64_t)>& f) {
    INFO("tensor " << name);
    const auto& t = tensor(ts, name);
    CHECK(t.dtype == dtype);
    CHECK(t.shape == shape);
    CHECK(values(t.dtype, t.bytes) == formula(shape.numel(), f));
}

// ---- hand-made files: a small zip writer (stored entries, no data descriptors) and pickle pieces ----

std::string le(uint64_t v, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += char(uint8_t(v >> (8 * i)));
    return s;
}

struct ZipOptions {
    int compressed_entry = -1;  // this entry claims method 8
    bool zip64 = false;         // sizes and offsets in ZIP64 extra fields, ZIP64 end records
};

std::string make_zip(const std::vector<std::pair<std::string, std::string>>& entries, ZipOptions o = {}) {
    std::string out, central;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto& [name, data] = entries[i];
        const uint64_t method = int(i) == o.compressed_entry ? 8 : 0;
        const uint32_t crc = io::detail::crc32(data.data(), data.size());
        const uint64_t header = out.size();
        out += le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(method, 2) + le(0, 4) + le(crc, 4) + le(data.size(), 4) +
               le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + name + data;
        const uint64_t small = o.zip64 ? 0xffffffff : 0;
        const std::string extra =
            o.zip64 ? le(1, 2) + le(24, 2) + le(data.size(), 8) + le(data.size(), 8) + le(header, 8) : "";
        central += le(0x02014b50, 4) + le(20, 2) + le(20, 2) + le(0, 2) + le(method, 2) + le(0, 4) + le(crc, 4) +
                   le(small ? small : data.size(), 4) + le(small ? small : data.size(), 4) + le(name.size(), 2) +
                   le(extra.size(), 2) + le(0, 8) + le(0, 2) + le(small ? small : header, 4) + name + extra;
    }
    const uint64_t cd_offset = out.size(), cd_size = central.size(), n = entries.size();
    out += central;
    if (o.zip64) {
        const uint64_t z = out.size();
        out += le(0x06064b50, 4) + le(44, 8) + le(45, 2) + le(45, 2) + le(0, 8) + le(n, 8) + le(n, 8) + le(cd_size, 8) +
               le(cd_offset, 8);
        out += le(0x07064b50, 4) + le(0, 4) + le(z, 8) + le(1, 4);
        return out + le(0x06054b50, 4) + le(0, 4) + le(0xffff, 2) + le(0xffff, 2) + le(0xffffffff, 4) +
               le(0xffffffff, 4) + le(0, 2);
    }
    return out + le(0x06054b50, 4) + le(0, 4) + le(n, 2) + le(n, 2) + le(cd_size, 4) + le(cd_offset, 4) + le(0, 2);
}

// A torch.save-like file: archive/data.pkl, archive/data/<key> for each storage, archive/version.
std::string torch_zip(const std::string& pickle, const std::vector<std::pair<std::string, std::string>>& storages,
                      ZipOptions o = {}) {
    std::vector<std::pair<std::string, std::string>> entries = {{"archive/data.pkl", pickle}};
    for (const auto& [key, bytes] : storages) entries.push_back({"archive/data/" + key, bytes});
    entries.push_back({"archive/version", "3\n"});
    return make_zip(entries, o);
}

std::string X(const std::string& s) { return "X" + le(s.size(), 4) + s; }  // BINUNICODE
std::string K(uint64_t v) {                                                // a small int, or LONG1
    return v <= 0xff ? "K" + le(v, 1) : "\x8a\x08" + le(v, 8);
}
std::string tuple(const std::vector<uint64_t>& v) {
    std::string s = "(";
    for (uint64_t x : v) s += K(x);
    return s + "t";
}
// OrderedDict({name: _rebuild_tensor_v2(storage(cls, key, numel), offset, size, stride, False, OrderedDict())})
std::string tensor_pickle(const std::string& name, const std::string& cls, const std::string& key, uint64_t numel,
                          uint64_t offset, const std::vector<uint64_t>& size, const std::vector<uint64_t>& stride) {
    return "\x80\x02"
           "ccollections\nOrderedDict\nq\x00)R"s +
           X(name) + "ctorch._utils\n_rebuild_tensor_v2\n((" + X("storage") + "ctorch\n" + cls + "\n" + X(key) +
           X("cpu") + K(numel) + "tQ" + K(offset) + tuple(size) + tuple(stride) + "\x89h\x00)RtRs."s;
}
std::string f32_bytes(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) {
        const float f = float(i) + 0.5f;
        s.append(reinterpret_cast<const char*>(&f), 4);
    }
    return s;
}

struct Scratch {
    testing::TempDir dir{"torch-ckpt"};
    std::string write(const std::string& bytes, const std::string& name = "bad.bin") {
        testing::write_bytes(dir / name, bytes);
        return (dir / name).string();
    }
};

// Central directory headers of a file by entry name, without the local header offset (the last 4 bytes).
std::map<std::string, std::string> central_headers(const std::string& file) {
    const auto* d = reinterpret_cast<const uint8_t*>(file.data());
    const std::size_t eocd = file.size() - 22, z = eocd - 20 - 56;  // torch's files always end with ZIP64 records
    REQUIRE(io::detail::le(d + z, 4) == 0x06064b50);
    std::map<std::string, std::string> out;
    for (uint64_t q = io::detail::le(d + z + 48, 8), n = io::detail::le(d + z + 32, 8); n > 0; --n) {
        const uint64_t name = io::detail::le(d + q + 28, 2), extra = io::detail::le(d + q + 30, 2);
        out[file.substr(std::size_t(q + 46), std::size_t(name))] = file.substr(std::size_t(q), 42);
        q += 46 + name + extra;
    }
    return out;
}

}  // namespace

TEST_CASE("torch checkpoint: FBI-LLM module state_dict from torch with _metadata and a tied lm_head") {
    const auto ts = io::load_torch_state_dict(fixture("fbi_state_dict.bin"));
    std::vector<std::string> names;
    for (const auto& t : ts) names.push_back(t.name);
    const std::string q = "model.layers.0.self_attn.q_proj.", k = "model.layers.0.self_attn.k_proj.";
    CHECK(names == std::vector<std::string>{"model.embed_tokens.weight", q + "weight", q + "wscale", q + "wbias",
                                            k + "weight", k + "wscale", k + "wbias", "model.norm.weight",
                                            "lm_head.weight"});
    auto embed = [](int64_t i) { return double(i - 12) * 0.125; };
    check_tensor(ts, "model.embed_tokens.weight", "F32", {6, 4}, embed);
    check_tensor(ts, "lm_head.weight", "F32", {6, 4}, embed);
    check_tensor(ts, q + "weight", "F32", {4, 4}, [](int64_t i) { return double(i) * 0.5 - 4; });
    check_tensor(ts, q + "wscale", "F32", {4}, [](int64_t i) { return 1 + double(i) * 0.25; });
    check_tensor(ts, q + "wbias", "F32", {4}, [](int64_t i) { return double(i) * -0.5; });
    check_tensor(ts, k + "weight", "F32", {2, 4}, [](int64_t i) { return double(i) * 0.5 - 1; });
    check_tensor(ts, k + "wscale", "F32", {2}, [](int64_t i) { return 1 + double(i) * 0.25; });
    check_tensor(ts, k + "wbias", "F32", {2}, [](int64_t i) { return double(i) * -0.5; });
    check_tensor(ts, "model.norm.weight", "BF16", {4}, [](int64_t i) { return 1 + double(i) * 0.0625; });

    // The tied pair shares one storage in the file and gets two copies here.
    const io::TorchCheckpointReader reader(fixture("fbi_state_dict.bin"));
    CHECK(reader.archive() == "fbi_state_dict");
    CHECK(reader.at("lm_head.weight").storage == reader.at("model.embed_tokens.weight").storage);
    CHECK(reader.at("lm_head.weight").storage != reader.at(q + "weight").storage);
    CHECK(tensor(ts, "lm_head.weight").bytes.data() != tensor(ts, "model.embed_tokens.weight").bytes.data());
    CHECK_THROWS_WITH_AS(reader.at("missing"), doctest::Contains("tensor missing is missing"), Error);
}

TEST_CASE("torch checkpoint: every dtype and a scalar and an empty tensor and five views of one storage") {
    const auto ts = io::load_torch_state_dict(fixture("dtypes_views.bin"));
    REQUIRE(ts.size() == 17);
    check_tensor(ts, "f32", "F32", {2, 3}, [](int64_t i) { return double(i) * 0.5 - 1; });
    check_tensor(ts, "bf16", "BF16", {5}, [](int64_t i) { return double(i - 2) * 0.25; });
    check_tensor(ts, "f16", "F16", {2, 2}, [](int64_t i) { return double(i) * 0.125 + 0.5; });
    check_tensor(ts, "f64", "F64", {3}, [](int64_t i) { return double(i) / 3; });  // every bit: 1/3 and 2/3
    check_tensor(ts, "i64", "I64", {4}, [](int64_t i) { return double(i * (int64_t(1) << 40) - 3); });
    check_tensor(ts, "i32", "I32", {3}, [](int64_t i) { return double(i * -70000); });
    check_tensor(ts, "i16", "I16", {3}, [](int64_t i) { return double(i * -300); });
    check_tensor(ts, "i8", "I8", {4}, [](int64_t i) { return double(i - 2); });
    check_tensor(ts, "u8", "U8", {4}, [](int64_t i) { return double(i * 60); });
    check_tensor(ts, "bool", "BOOL", {5}, [](int64_t i) { return i % 2 == 0 ? 1.0 : 0.0; });
    check_tensor(ts, "scalar", "F32", Shape{}, [](int64_t) { return 3.5; });
    check_tensor(ts, "empty", "F32", {0, 4}, [](int64_t) { return 0.0; });
    // base = arange(20) * 0.25 seen as [4, 5]; the views read the same storage.
    auto base = [](int64_t r, int64_t c) { return double(r * 5 + c) * 0.25; };
    check_tensor(ts, "view.base", "F32", {4, 5}, [&](int64_t i) { return base(i / 5, i % 5); });
    check_tensor(ts, "view.offset", "F32", {2, 3}, [](int64_t i) { return double(5 + i) * 0.25; });
    check_tensor(ts, "view.transposed", "F32", {5, 4}, [&](int64_t i) { return base(i % 4, i / 4); });
    check_tensor(ts, "view.columns", "F32", {3, 2}, [&](int64_t i) { return base(1 + i / 2, 1 + 2 * (i % 2)); });
    check_tensor(ts, "view.expand", "F32", {3}, [](int64_t) { return 0.5; });

    const io::TorchCheckpointReader reader(fixture("dtypes_views.bin"));
    const auto& transposed = reader.at("view.transposed");
    CHECK(transposed.stride == std::vector<int64_t>{1, 5});
    CHECK(reader.at("view.offset").offset == 5);
    CHECK(reader.at("view.columns").offset == 6);
    CHECK(reader.at("view.expand").stride == std::vector<int64_t>{0});
    for (const char* v : {"view.offset", "view.transposed", "view.columns", "view.expand"})
        CHECK(reader.at(v).storage == reader.at("view.base").storage);
    CHECK(io::TorchCheckpointReader::contiguous(reader.at("view.offset")));
    CHECK_FALSE(io::TorchCheckpointReader::contiguous(transposed));
    CHECK_FALSE(io::TorchCheckpointReader::contiguous(reader.at("view.expand")));
    // Contiguous tensors are read in place; views are gathered into the scratch buffer.
    std::vector<uint8_t> scratch;
    CHECK(reader.data(reader.at("view.offset"), scratch) != scratch.data());
    CHECK(scratch.empty());
    const uint8_t* gathered = reader.data(transposed, scratch);
    CHECK(gathered == scratch.data());
    CHECK(scratch.size() == 80);
    // An Entry that is not the reader's own is looked up by name, never trusted.
    io::TorchCheckpointReader::Entry forged = reader.at("f32");
    forged.offset = 1000;
    CHECK(reader.read(forged) == reader.read(reader.at("f32")));
}

TEST_CASE("torch checkpoint: pickle protocol 4 with the state dict under model beside plain data") {
    const auto ts = io::load_torch_state_dict(fixture("nested_protocol4.bin"));
    REQUIRE(ts.size() == 2);
    CHECK(ts[0].name == "w");
    CHECK(ts[1].name == "b");
    check_tensor(ts, "w", "F32", {3, 2}, [](int64_t i) { return double(i) - 2.5; });
    check_tensor(ts, "b", "F16", {2}, [](int64_t i) { return double(i) + 0.5; });
}

TEST_CASE("torch checkpoint: the writer makes torch's data.pkl byte for byte and its zip layout") {
    // scripts/make_torch_fixtures.py writer_reference(): w.{i} = i + j * 0.5 - 1.
    const std::vector<Shape> shapes = {{3}, {2, 3}, {1, 2, 2}, {2, 1, 1, 2}, {1, 1, 2, 1, 1}, {}, {0, 3}, {2, 0, 3}};
    std::vector<std::vector<uint8_t>> storage;
    std::vector<io::SafetensorsBlob> blobs;
    for (int i = 0; i < 36; ++i) {
        const Shape& shape = shapes[std::size_t(i) % shapes.size()];
        const std::string dtype = i >= 33 ? "F64" : i % 3 == 0 ? "F32" : i % 3 == 1 ? "BF16" : "F16";
        auto& bytes = storage.emplace_back();
        for (int64_t j = 0; j < shape.numel(); ++j) {
            const double v = double(i) + double(j) * 0.5 - 1;
            const float f = float(v);
            const uint16_t h = dtype == "BF16" ? to_bf16(f).bits : to_fp16(f).bits;
            const auto* p = dtype == "F64"   ? reinterpret_cast<const uint8_t*>(&v)
                            : dtype == "F32" ? reinterpret_cast<const uint8_t*>(&f)
                                             : reinterpret_cast<const uint8_t*>(&h);
            bytes.insert(bytes.end(), p, p + io::safetensors_dtype_size(dtype));
        }
        blobs.push_back({"w." + std::to_string(i), dtype, shape, bytes.data(), bytes.size()});
    }
    testing::TempDir dir("torch-writer");
    io::save_torch_state_dict(dir / "writer_ref.bin", blobs);  // the same name: the same archive folder
    const std::string ours = testing::read_bytes(dir / "writer_ref.bin");
    const std::string theirs = testing::read_bytes(kFixtures / "writer_ref.bin");
    const auto* od = reinterpret_cast<const uint8_t*>(ours.data());
    const auto* td = reinterpret_cast<const uint8_t*>(theirs.data());
    const auto our_zip = io::detail::read_zip_directory(od, ours.size(), "ours");
    const auto their_zip = io::detail::read_zip_directory(td, theirs.size(), "theirs");
    // torch 1.13 writes no byteorder (2.1 writes it second): otherwise the same entries in the same order.
    std::vector<std::string> our_names, their_names;
    for (const auto& e : our_zip)
        if (e.name != "writer_ref/byteorder") our_names.push_back(e.name);
    for (const auto& e : their_zip) their_names.push_back(e.name);
    CHECK(our_names == their_names);
    CHECK(our_zip[1].name == "writer_ref/byteorder");
    const auto our_central = central_headers(ours), their_central = central_headers(theirs);
    for (const auto& e : their_zip) {
        INFO("entry " << e.name);
        const auto it = std::find_if(our_zip.begin(), our_zip.end(), [&](const auto& o) { return o.name == e.name; });
        REQUIRE(it != our_zip.end());
        CHECK(ours.substr(std::size_t(it->data), std::size_t(it->size)) ==
              theirs.substr(std::size_t(e.data), std::size_t(e.size)));  // data.pkl included: byte for byte
        CHECK(it->data % 64 == 0);
        CHECK(e.data % 64 == 0);
        CHECK(our_central.at(e.name) == their_central.at(e.name));  // flags, CRC, sizes, ...
        CHECK(ours.substr(std::size_t(it->header), 26) == theirs.substr(std::size_t(e.header), 26));  // local header
    }
    // The same tensors come back through the reader.
    const auto ts = io::load_torch_state_dict((dir / "writer_ref.bin").string());
    REQUIRE(ts.size() == blobs.size());
    for (std::size_t i = 0; i < ts.size(); ++i) {
        CHECK(ts[i].name == blobs[i].name);
        CHECK(ts[i].shape == blobs[i].shape);
        CHECK(ts[i].bytes == storage[i]);
    }
}

TEST_CASE("torch checkpoint: writer and reader round trip every dtype and more than one batch of 1000 items") {
    testing::TempDir dir("torch-roundtrip");
    std::vector<std::vector<uint8_t>> storage;
    std::vector<io::SafetensorsBlob> blobs;
    const char* dtypes[] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"};
    const std::vector<Shape> shapes = {{7}, {3, 5}, {}, {0}, {2, 1, 3, 1, 2, 1}, {1, 300}};
    Rng rng(5);
    for (int i = 0; i < 1001; ++i) {  // the pickler's batches: SETITEMS of 1000, then a SETITEM
        const std::string dtype = dtypes[i % 10];
        const Shape& shape = shapes[std::size_t(i) % shapes.size()];
        auto& bytes = storage.emplace_back(std::size_t(shape.numel()) * io::safetensors_dtype_size(dtype));
        for (auto& b : bytes) b = uint8_t(rng.next_u64() >> 56);
        if (dtype == "BOOL")
            for (auto& b : bytes) b &= 1;
        blobs.push_back({"model.layers." + std::to_string(i) + ".weight", dtype, shape, bytes.data(), bytes.size()});
    }
    io::save_torch_state_dict(dir / "pytorch_model.bin", blobs);
    io::save_torch_state_dict(dir / "pytorch_model.bin", blobs);  // over an existing file: replaced atomically
    CHECK_FALSE(std::filesystem::exists(dir / "pytorch_model.bin.tmp"));
    const auto ts = io::load_torch_state_dict((dir / "pytorch_model.bin").string());
    REQUIRE(ts.size() == blobs.size());
    for (std::size_t i = 0; i < ts.size(); ++i) {
        INFO("tensor " << i);
        CHECK(ts[i].name == blobs[i].name);
        CHECK(ts[i].dtype == blobs[i].dtype);
        CHECK(ts[i].shape == blobs[i].shape);
        CHECK(ts[i].bytes == storage[i]);
    }
    CHECK(io::TorchCheckpointReader((dir / "pytorch_model.bin").string()).archive() == "pytorch_model");
    io::save_torch_state_dict(dir / "empty.bin", {});
    CHECK(io::load_torch_state_dict((dir / "empty.bin").string()).empty());

    auto refused = [&](std::vector<io::SafetensorsBlob> b, const char* what) {
        CHECK_THROWS_WITH_AS(io::save_torch_state_dict(dir / "bad.bin", b), doctest::Contains(what), Error);
        CHECK_FALSE(std::filesystem::exists(dir / "bad.bin"));
    };
    refused({blobs[0], blobs[0]}, "tensor model.layers.0.weight appears twice");
    refused({{"t", "F8", {2}, storage[0].data(), 2}}, "tensor t: unknown dtype F8");
    refused({{"t", "F32", {3}, storage[0].data(), 8}}, "tensor t: 8 bytes for shape [3] of F32");
    refused({{std::string("\xff"), "U8", {1}, storage[0].data(), 1}}, "the name is not valid UTF-8");
}

TEST_CASE("torch checkpoint: ZIP64 records and extra fields are read") {
    Scratch s;
    const std::string pickle = tensor_pickle("w", "FloatStorage", "0", 4, 0, {2, 2}, {2, 1});
    const auto ts = io::load_torch_state_dict(s.write(torch_zip(pickle, {{"0", f32_bytes(4)}}, {-1, true})));
    REQUIRE(ts.size() == 1);
    CHECK(values("F32", ts[0].bytes) == std::vector<double>{0.5, 1.5, 2.5, 3.5});
}

TEST_CASE("torch checkpoint: globals outside a state dict are refused by name and nothing runs") {
    Scratch s;
    auto refused = [&](const std::string& pickle, const char* what) {
        CHECK_THROWS_WITH_AS(io::load_torch_state_dict(s.write(torch_zip(pickle, {}))), doctest::Contains(what), Error);
    };
    // pickle.dumps(os.system("ls")) as torch.load would meet it
    refused(std::string("\x80\x02") + "cos\nsystem\n" + X("touch /tmp/bitgrad-pwned") + "\x85R.",
            "global os.system is not allowed in a state dict (allowed: collections.OrderedDict");
    refused(std::string("\x80\x04\x8c\x05posix\x8c\x06system\x93") + X("id") + "\x85R.", "global posix.system");
    refused(std::string("\x80\x02") + "cbuiltins\neval\n" + X("1") + "\x85R.", "global builtins.eval");
    refused(std::string("\x80\x02") + "ctorch._utils\n_rebuild_tensor\n.", "global torch._utils._rebuild_tensor ");
    refused(std::string("\x80\x02") + "ctorch\nload\n.", "global torch.load is not allowed");
    CHECK_FALSE(std::filesystem::exists("/tmp/bitgrad-pwned"));
    // Allowed globals are only called as a state dict calls them.
    refused(std::string("\x80\x02") + "ctorch\nFloatStorage\n)R.", "global torch.FloatStorage cannot be called");
    refused(std::string("\x80\x02") + "ccollections\nOrderedDict\n" + X("x") + "\x85R.",
            "collections.OrderedDict called with arguments");
}

TEST_CASE("torch checkpoint: malformed pickles are refused naming the entry - the byte and the rule") {
    Scratch s;
    auto refused = [&](const std::string& pickle, const char* what,
                       const std::vector<std::pair<std::string, std::string>>& storages = {}) {
        CHECK_THROWS_WITH_AS(io::load_torch_state_dict(s.write(torch_zip(pickle, storages))), doctest::Contains(what),
                             Error);
    };
    const std::string good = tensor_pickle("w", "FloatStorage", "0", 4, 0, {2, 2}, {2, 1});
    REQUIRE(io::load_torch_state_dict(s.write(torch_zip(good, {{"0", f32_bytes(4)}}))).size() == 1);

    refused("\x80\x02i.", "archive/data.pkl at byte 2: opcode 0x69 ('i') is not one a state dict uses");
    refused("\x80\x02\xff.", "opcode 0xff is not one a state dict uses");
    refused(good.substr(0, good.size() - 2), "the pickle ends before its STOP opcode (truncated)",
            {{"0", f32_bytes(4)}});
    refused(good.substr(0, 40), "truncated");
    refused("\x80\x02X\xff\xff\xff\x7f", "a string of 2147483647 bytes runs past the pickle's end");
    refused("\x80\x02h\x05.", "at byte 2: memo index 5 is not set (the memo holds 0 entries)");
    refused("\x80\x02j\x00\x00\x00\x01."s, "memo index 16777216 is not set");
    refused("\x80\x02t.", "an opcode needs a MARK, but there is none");
    refused("\x80\x02\x86.", "TUPLE2 on a stack of fewer objects");
    refused("\x80\x02K\x01K\x02K\x03s.", "SETITEM on an int");
    refused("\x80\x02K\x01K\x02.", "STOP with 2 objects");
    refused("\x80\x09.", "pickle protocol 9, expected 2 to 5");
    refused("\x80\x02\x8a\x09" + std::string(9, '\x01') + ".", "an integer of 9 bytes");
    refused("\x80\x02X\x02\x00\x00\x00\xc3\x28."s, "not valid UTF-8");
    refused("\x80\x02]K\x01\x85q\x00."s, "STOP with 2 objects");
    refused(
        "\x80\x02]K\x01"
        "a.",
        "holds a list, expected a state dict");
    refused("\x80\x02}" + X("step") + "K\x07s.", "entry \"step\" holds an int: expected a state dict (str -> tensor)");
    refused("\x80\x02}K\x07K\x07s.", "entry (a key that is an int) holds an int");
    refused("\x80\x02}]b.", "BUILD of a dict with a list");
    refused("\x80\x02" + std::string(io::detail::kTorchPickleMaxObjects, ']') + ".",
            "more than 2097152 objects (a state dict needs far fewer)");
    // A persistent id other than a storage; a tensor built from something else.
    refused("\x80\x02" + X("file") + "\x85Q.", "a persistent id that is not ('storage', torch.<X>Storage");
    refused(
        "\x80\x02"
        "ctorch._utils\n_rebuild_tensor_v2\n(K\x00K\x00))\x89}tR."s,
        "_rebuild_tensor_v2 called with arguments that are not (storage");
}

TEST_CASE("torch checkpoint: tensors and storages that do not fit are refused naming the tensor") {
    Scratch s;
    auto refused = [&](const std::string& pickle, const std::vector<std::pair<std::string, std::string>>& storages,
                       const char* what) {
        CHECK_THROWS_WITH_AS(io::load_torch_state_dict(s.write(torch_zip(pickle, storages))), doctest::Contains(what),
                             Error);
    };
    const auto four = std::vector<std::pair<std::string, std::string>>{{"0", f32_bytes(4)}};
    refused(tensor_pickle("w", "FloatStorage", "7", 4, 0, {4}, {1}), four, "storage 7 has no data file archive/data/7");
    refused(tensor_pickle("w", "FloatStorage", "0", 3, 0, {3}, {1}), four,
            "storage 0 holds 3 x F32, but archive/data/0 has 16 bytes");
    refused(tensor_pickle("w", "FloatStorage", "0", 4, 0, {5}, {1}), four,
            "tensor w (offset 0, shape [5]) reaches element 4 of storage 0, which holds 4 elements");
    refused(tensor_pickle("w", "FloatStorage", "0", 4, 3, {2}, {1}), four, "reaches element 4 of storage 0");
    refused(tensor_pickle("w", "FloatStorage", "0", 4, 5, {0}, {1}), four, "reaches element 5 of storage 0");
    refused(tensor_pickle("w", "FloatStorage", "0", 4, 0, {2, 2}, {3, 1}), four, "reaches element 4");
    refused(
        tensor_pickle("w", "FloatStorage", "0", 4, 0, {uint64_t(1) << 40, uint64_t(1) << 40}, {uint64_t(1) << 40, 1}),
        four, "tensor w: size x stride overflows");
    refused(tensor_pickle("w", "FloatStorage", "0", 4, 0, {uint64_t(1) << 40, uint64_t(1) << 40}, {0, 0}), four,
            "tensor w: its size has more than 2^62 elements");
    refused(tensor_pickle("w", "FloatStorage", "0", 4, 0, {1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1}), four,
            "tensor w has 7 dims, more than bitgrad's 6");
    refused(tensor_pickle("w", "FloatStorage", "0", uint64_t(1) << 61, 0, {4}, {1}), four,
            "storage 0 holds 2305843009213693952 x F32");
    // One storage met as two dtypes; one name twice.
    const std::string head =
        "\x80\x02"
        "ccollections\nOrderedDict\nq\x00)R("s;
    auto item = [](const std::string& name, const std::string& cls) {
        return X(name) + "ctorch._utils\n_rebuild_tensor_v2\n((" + X("storage") + "ctorch\n" + cls + "\n" + X("0") +
               X("cpu") + K(4) + "tQ" + K(0) + tuple({4}) + tuple({1}) + "\x89h\x00)RtR"s;
    };
    refused(head + item("a", "FloatStorage") + item("b", "IntStorage") + "u.", four,
            "storage 0 appears as 4 x I32 and as 4 x F32");
    refused(head + item("a", "FloatStorage") + item("a", "FloatStorage") + "u.", four,
            "tensor a appears twice in the state dict");
    // A stride-0 view may be larger than its storage; it is read like any other.
    const auto ts = io::load_torch_state_dict(
        s.write(torch_zip(tensor_pickle("w", "FloatStorage", "0", 4, 3, {2, 3}, {0, 0}), four)));
    CHECK(values("F32", ts[0].bytes) == std::vector<double>(6, 3.5));
}

TEST_CASE("torch checkpoint: a view that repeats its storage says what it expands to - convert reports it first") {
    // 12 floats (48 bytes) viewed as [40000, 40000] through stride 0: 6.4 GB once made contiguous.
    Scratch s;
    const std::string file = s.write(
        torch_zip(tensor_pickle("w", "FloatStorage", "0", 12, 0, {40000, 40000}, {0, 0}), {{"0", f32_bytes(12)}}),
        "expand.bin");
    const io::TorchCheckpointReader reader(file);
    const auto x = reader.expanded_view(reader.at("w"));
    REQUIRE(x);
    CHECK(x->file == file);
    CHECK(x->storage_bytes == 48);
    CHECK(x->shape == Shape({40000, 40000}));
    CHECK(x->bytes == 6400000000);
    const std::string described =
        "tensor w (a view of 48 bytes of storage 0 that expands to [40000, 40000], "
        "6400000000 bytes)";
    CHECK(x->describe() == described);
    // Views that do not repeat an element are not expansions: a transpose, a slice, a size-1 dim
    // with stride 0; overlapping strides (5 elements over a span of 4) are.
    const io::TorchCheckpointReader views(fixture("dtypes_views.bin"));
    for (const char* v : {"view.base", "view.offset", "view.transposed", "view.columns", "empty", "scalar"})
        CHECK_FALSE(views.expanded_view(views.at(v)));
    CHECK(views.expanded_view(views.at("view.expand")));  // [3] with stride 0 over one float
    const io::TorchCheckpointReader unit(s.write(
        torch_zip(tensor_pickle("w", "FloatStorage", "0", 4, 0, {1, 4}, {0, 1}), {{"0", f32_bytes(4)}}), "u.bin"));
    CHECK_FALSE(unit.expanded_view(unit.at("w")));
    const io::TorchCheckpointReader overlap(s.write(
        torch_zip(tensor_pickle("w", "FloatStorage", "0", 4, 0, {2, 3}, {1, 1}), {{"0", f32_bytes(4)}}), "o.bin"));
    CHECK(overlap.expanded_view(overlap.at("w")));  // 6 elements over a span of 4

    // Reading it, and converting it, is refused naming the expansion when it does not fit; convert
    // reports it before anything is gathered or written.
    testing::ScopedEnv limit("BITGRAD_MEMORY_LIMIT", "1000000000");
    const std::string refusal = file + ": " + described + " needs 6.40 GB but only 1.00 GB",
                      by_convert = "convert: " + refusal;
    std::vector<uint8_t> scratch;
    CHECK_THROWS_WITH_AS(reader.data(reader.at("w"), scratch), doctest::Contains(refusal.c_str()), Error);
    std::vector<io::TorchExpandedView> reported;
    CHECK_THROWS_WITH_AS(
        io::convert_torch_to_safetensors({file}, s.dir / "model.safetensors",
                                         [&](const io::TorchExpandedView& v) { reported.push_back(v); }),
        doctest::Contains(by_convert.c_str()), Error);
    REQUIRE(reported.size() == 1);
    CHECK(reported[0].describe() == described);
    CHECK_FALSE(std::filesystem::exists(s.dir / "model.safetensors"));
}

TEST_CASE("torch checkpoint: convert of a stride-0 view under ulimit -v is refused by the size check - naming both") {
    // The issue's case: the 6.4 GB expansion under an address-space limit that MemAvailable does
    // not show. In a child, with RLIMIT_AS 2 GB above what it holds: a bitgrad::Error naming the
    // expansion and RLIMIT_AS, not std::bad_alloc from the gather.
    Scratch s;
    const std::string file = s.write(
        torch_zip(tensor_pickle("w", "FloatStorage", "0", 12, 0, {40000, 40000}, {0, 0}), {{"0", f32_bytes(12)}}),
        "expand.bin");
    const auto out = s.dir / "model.safetensors";
    const auto [code, text] = testing::in_child([&](std::string& msg) {
        ::unsetenv("BITGRAD_MEMORY_LIMIT");
        const uint64_t held = detail::proc_kb_field("/proc/self/status", "VmSize:").value_or(0);
        rlimit r{};
        if (held == 0 || ::getrlimit(RLIMIT_AS, &r) != 0) return 10;
        if (r.rlim_max != RLIM_INFINITY && r.rlim_max < held + (uint64_t(2) << 30)) return 11;
        r.rlim_cur = held + (uint64_t(2) << 30);
        if (::setrlimit(RLIMIT_AS, &r) != 0) return 12;
        try {
            io::convert_torch_to_safetensors({file}, out);
        } catch (const Error& e) {
            msg = e.what();
            return 0;
        } catch (const std::bad_alloc&) { return 2; }
        return 3;
    });
    INFO(text);
    REQUIRE(code != 11);
    CHECK(code == 0);
    CHECK(text.find("tensor w (a view of 48 bytes of storage 0 that expands to [40000, 40000], 6400000000 bytes) "
                    "needs 6.40 GB") != std::string::npos);
    CHECK(text.find("RLIMIT_AS (ulimit -v)") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(out));
}

TEST_CASE("torch checkpoint: damaged or foreign zip files are refused naming the entry") {
    Scratch s;
    auto refused = [&](const std::string& bytes, const char* what) {
        CHECK_THROWS_WITH_AS(io::load_torch_state_dict(s.write(bytes)), doctest::Contains(what), Error);
    };
    const std::string good = tensor_pickle("w", "FloatStorage", "0", 4, 0, {4}, {1});
    const auto four = std::vector<std::pair<std::string, std::string>>{{"0", f32_bytes(4)}};
    refused(torch_zip(good, four, {1, false}), "entry archive/data/0 is compressed (method 8, deflate)");
    refused(torch_zip(good, four, {0, false}), "entry archive/data.pkl is compressed");
    refused(
        "\x80\x02\x8a\x0al\xfc\x9c"
        "F\xf9 j\xa8P\x19.",
        "a bare pickle, torch.save's legacy format");
    refused("hello, this is not a zip file at all", "not a zip archive");
    refused(make_zip({{"archive/weights.pkl", good}}), "no <archive>/data.pkl among its 1 zip entries");
    refused(make_zip({{"a/data.pkl", good}, {"b/data.pkl", good}}), "two pickles, a/data.pkl and b/data.pkl");
    refused(make_zip({{"archive/data.pkl", good}, {"archive/byteorder", "big"}, {"archive/data/0", f32_bytes(4)}}),
            "archive/byteorder is \"big\", expected \"little\"");
    refused(make_zip({{"archive/data.pkl", good}, {"archive/data.pkl", good}}), "entry archive/data.pkl appears twice");

    // A flipped byte: in the pickle when the file is opened, in a tensor's storage when it is read.
    std::string bytes = torch_zip(good, four);
    const auto zip = io::detail::read_zip_directory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "t");
    std::string bad_pickle = bytes, bad_data = bytes;
    bad_pickle[std::size_t(zip[0].data + 5)] ^= 0x10;
    bad_data[std::size_t(zip[1].data + 2)] ^= 0x01;
    refused(bad_pickle, "archive/data.pkl: CRC-32");
    const io::TorchCheckpointReader reader(s.write(bad_data, "bad-data.bin"));
    CHECK_THROWS_WITH_AS(reader.read(reader.at("w")), doctest::Contains("archive/data/0: CRC-32"), Error);

    // Every truncation of a real torch file is refused, and so is every length field set to all ones.
    const std::string real = testing::read_bytes(kFixtures / "fbi_state_dict.bin");
    int accepted = 0;
    for (std::size_t n = 0; n < real.size(); ++n) {
        try {
            io::load_torch_state_dict(s.write(real.substr(0, n)));
            ++accepted;
        } catch (const Error&) {}
    }
    CHECK(accepted == 0);
    for (std::size_t at = 0; at + 4 <= real.size(); ++at) {
        std::string b = real;
        std::memset(b.data() + at, 0xff, 4);
        try {
            io::load_torch_state_dict(s.write(b));
        } catch (const Error&) {}  // accepted or refused, never out of bounds (the sanitizer build checks)
    }
}
