// Fuzz target: io::load_safetensors<float> and <double> (the two instantiations bitgrad uses).
// A file that loads must account for every byte: 8 + header + sum(numel * itemsize) == file size,
// and every element of every tensor must be readable (ASan checks the buffer really is that long).
#include <bitgrad/format/safetensors.hpp>

#include <cstring>
#include <set>

#include "harness.hpp"

namespace {

template <class T>
void load_and_check(const std::string& path, const uint8_t* data, std::size_t size) {
    const auto file = bitgrad::io::load_safetensors<T>(path);
    uint64_t header = 0;
    std::memcpy(&header, data, 8);  // a file that loaded is at least 8 bytes
    uint64_t total = 0;
    std::set<std::string> names;
    for (const auto& [name, t] : file.tensors) {
        FUZZ_EXPECT(names.insert(name).second, "tensor " << name << " returned twice");
        uint64_t bytes = 0;
        FUZZ_EXPECT(t.numel() >= 0 && !__builtin_mul_overflow(uint64_t(t.numel()), sizeof(T), &bytes) && bytes <= size,
                    "tensor " << name << " has shape " << t.shape() << " (" << t.numel() << " elements) in a " << size
                              << "-byte file");
        total += bytes;
        T sum = 0;
        for (int64_t i = 0; i < t.numel(); ++i) sum += t[i];
        volatile T sink = sum;  // keeps the reads
        (void)sink;
    }
    FUZZ_EXPECT(8 + header + total == size,
                "header " << header << " + tensors " << total << " bytes != file size " << size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    const std::string& path = fuzz::write_temp_file("safetensors", data, size);
    try {
        load_and_check<float>(path, data, size);
    } catch (const bitgrad::Error&) {  // a refusal: the expected outcome for most inputs
    }
    try {
        load_and_check<double>(path, data, size);
    } catch (const bitgrad::Error&) {}
    return 0;
}
