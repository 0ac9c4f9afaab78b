#!/usr/bin/env python3
"""Checks that torch.load(path, weights_only=True) reads what io::save_torch_state_dict writes.

Run by hand; torch is never a dependency of bitgrad or of its tests. Debian's python3-torch is
installed for /usr/bin/python3 (not for other pythons on PATH):

    /usr/bin/python3 scripts/check_torch_export.py           # two small files, every dtype
    /usr/bin/python3 scripts/check_torch_export.py --zip64   # and a 4.3 GB one (about 1 minute;
                                                             # 4.3 GB of disk, 4.3 GB of memory for torch)

It compiles a small C++ program against include/ (g++, Eigen, nlohmann-json: scripts/setup.sh),
which writes the files into a temporary directory:
  pytorch_model.bin  30 tensors, every dtype (F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL), shapes with
                     0 to 6 dims, a scalar and empty ones; tensor i at flat index j holds
                     value(dtype, i, j) below, exact in its dtype
  many.bin           1001 tensors: the pickler's SETITEMS batches of 1000 and a last SETITEM
  big.bin (--zip64)  "before" F32 [1.5, -2], "big" U8 of 2^32 + 100 bytes (zeros but for 7 at the
                     end and 9 at 2^32), "after" F32 [1, 2, 3]: ZIP64 sizes, offsets and end records
then loads each with torch.load(weights_only=True) and compares dtype, shape and every value.
"""
import collections
import os
import subprocess
import sys
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROGRAM = r"""
#include <bitgrad/format/torch_checkpoint.hpp>

#include <sys/mman.h>

#include <chrono>
#include <cstdio>

using namespace bitgrad;

double value(const std::string& dtype, int i, int64_t j) {
    if (dtype == "I64") return double(j * (int64_t(1) << 40) - i);
    if (dtype == "I32") return double(j * -70001 + i);
    if (dtype == "I16") return double(j * -301 + i);
    if (dtype == "I8") return double(j * 7 - 50 + i);
    if (dtype == "U8") return double(j * 13 + i);
    if (dtype == "BOOL") return (i + j) % 3 == 0 ? 1 : 0;
    return i + double(j) * 0.25 - 3;  // F32 F16 BF16 F64
}

void encode(const std::string& dtype, double v, std::vector<uint8_t>& out) {
    auto put = [&](const auto x) {
        const auto* p = reinterpret_cast<const uint8_t*>(&x);
        out.insert(out.end(), p, p + sizeof x);
    };
    if (dtype == "F32") put(float(v));
    else if (dtype == "F64") put(v);
    else if (dtype == "F16") put(to_fp16(float(v)).bits);
    else if (dtype == "BF16") put(to_bf16(float(v)).bits);
    else if (dtype == "I64") put(int64_t(v));
    else if (dtype == "I32") put(int32_t(v));
    else if (dtype == "I16") put(int16_t(v));
    else if (dtype == "I8") put(int8_t(v));
    else put(uint8_t(v));  // U8, BOOL
}

int main(int argc, char** argv) {
    const std::string dir = argv[1];
    const char* dtypes[] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"};
    const std::vector<Shape> shapes = {{4}, {2, 3}, {}, {0, 5}, {3, 1, 2}, {1, 2, 1, 2, 1, 2}};
    std::vector<std::vector<uint8_t>> store;
    store.reserve(2000);
    std::vector<io::SafetensorsBlob> blobs, many;
    for (int i = 0; i < 30; ++i) {
        const std::string dtype = dtypes[i % 10];
        const Shape& shape = shapes[std::size_t(i) % shapes.size()];
        auto& bytes = store.emplace_back();
        for (int64_t j = 0; j < shape.numel(); ++j) encode(dtype, value(dtype, i, j), bytes);
        blobs.push_back({"model.layers." + std::to_string(i) + ".self_attn.q_proj.weight", dtype, shape, bytes.data(),
                         bytes.size()});
    }
    io::save_torch_state_dict(dir + "/pytorch_model.bin", blobs);
    for (int i = 0; i < 1001; ++i) {
        auto& bytes = store.emplace_back();
        encode("F32", value("F32", i, 0), bytes);
        many.push_back({"t" + std::to_string(i), "F32", {1}, bytes.data(), bytes.size()});
    }
    io::save_torch_state_dict(dir + "/many.bin", many);
    if (argc > 2) {
        // 2^32 + 100 bytes of zero pages (never touched, so never allocated) but two.
        const uint64_t n = (uint64_t(1) << 32) + 100;
        auto* big = static_cast<uint8_t*>(
            ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
        if (big == MAP_FAILED) return 1;
        big[n - 1] = 7;
        big[uint64_t(1) << 32] = 9;
        const float before[2] = {1.5f, -2.0f}, after[3] = {1.0f, 2.0f, 3.0f};
        auto t0 = std::chrono::steady_clock::now();
        io::save_torch_state_dict(dir + "/big.bin", {{"before", "F32", {2}, before, 8},
                                                      {"big", "U8", {int64_t(n)}, big, n},
                                                      {"after", "F32", {3}, after, 12}});
        auto t1 = std::chrono::steady_clock::now();
        // bitgrad reads it back too: the ZIP64 directory, the CRC of 4.3 GB, the tensor past 4 GiB.
        const io::TorchCheckpointReader reader(dir + "/big.bin");
        std::vector<uint8_t> scratch;
        const uint8_t* p = reader.data(reader.at("big"), scratch);
        auto t2 = std::chrono::steady_clock::now();
        const auto tail = reader.read(reader.at("after"));
        std::printf("big.bin: written in %.1f s; bitgrad read it back (CRC-32 of %.2f GB in %.1f s): big[-1] = %d, "
                    "after = %s\n",
                    std::chrono::duration<double>(t1 - t0).count(), double(n) / 1e9,
                    std::chrono::duration<double>(t2 - t1).count(), p[n - 1],
                    std::memcmp(tail.data(), after, 12) == 0 ? "[1, 2, 3]" : "WRONG");
    }
    return 0;
}
"""


def value(dtype, i, shape):
    n = 1
    for d in shape:
        n *= d
    j = torch.arange(n, dtype=torch.int64)
    if dtype == torch.int64:
        v = j * (1 << 40) - i
    elif dtype == torch.int32:
        v = j * -70001 + i
    elif dtype == torch.int16:
        v = j * -301 + i
    elif dtype == torch.int8:
        v = j * 7 - 50 + i
    elif dtype == torch.uint8:
        v = j * 13 + i
    elif dtype == torch.bool:
        v = (i + j) % 3 == 0
    else:
        v = i + j.to(torch.float64) * 0.25 - 3
    return v.to(dtype).reshape(shape)


def check(path, expected):
    sd = torch.load(path, weights_only=True)
    assert isinstance(sd, collections.OrderedDict), type(sd)
    assert list(sd.keys()) == [k for k, _ in expected], "names or order differ"
    for name, want in expected:
        got = sd[name]
        assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
        assert got.shape == want.shape, (name, got.shape, want.shape)
        assert torch.equal(got, want), (name, got, want)
    print(f"{os.path.basename(path)}: torch.load(weights_only=True) read {len(expected)} tensors, every value equal")


def main():
    zip64 = "--zip64" in sys.argv[1:]
    dtypes = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32, torch.int16,
              torch.int8, torch.uint8, torch.bool]
    shapes = [(4,), (2, 3), (), (0, 5), (3, 1, 2), (1, 2, 1, 2, 1, 2)]
    with tempfile.TemporaryDirectory(prefix="bitgrad-torch-export-") as tmp:
        source, program = os.path.join(tmp, "export.cpp"), os.path.join(tmp, "export")
        with open(source, "w") as f:
            f.write(PROGRAM)
        subprocess.run(["g++", "-std=c++20", "-O2", "-fopenmp", "-I" + os.path.join(ROOT, "include"),
                        "-isystem", "/usr/include/eigen3", source, "-o", program], check=True)
        subprocess.run([program, tmp] + (["zip64"] if zip64 else []), check=True)
        print("torch", torch.__version__)
        check(os.path.join(tmp, "pytorch_model.bin"),
              [(f"model.layers.{i}.self_attn.q_proj.weight", value(dtypes[i % 10], i, shapes[i % 6]))
               for i in range(30)])
        check(os.path.join(tmp, "many.bin"), [(f"t{i}", value(torch.float32, i, (1,))) for i in range(1001)])
        if zip64:
            sd = torch.load(os.path.join(tmp, "big.bin"), weights_only=True)
            assert list(sd.keys()) == ["before", "big", "after"]
            big = sd["big"]
            assert big.dtype == torch.uint8 and big.shape == ((1 << 32) + 100,)
            assert int(big[-1]) == 7 and int(big[1 << 32]) == 9 and int(torch.count_nonzero(big)) == 2
            assert torch.equal(sd["before"], torch.tensor([1.5, -2.0]))
            assert torch.equal(sd["after"], torch.tensor([1.0, 2.0, 3.0]))
            print("big.bin: torch.load(weights_only=True) read the 4.3 GB tensor and the one after it (ZIP64)")


if __name__ == "__main__":
    main()
