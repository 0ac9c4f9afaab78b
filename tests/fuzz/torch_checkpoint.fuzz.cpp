// Fuzz target: io::TorchCheckpointReader and io::load_torch_state_dict, the reader of torch.save's
// files (zip directory, pickle interpreter, tensor views of storages). Two kinds of input:
//   a zip ("PK\3\4...")  read as the file it is;
//   anything else        taken as a data.pkl: a first run of the pickle interpreter lists the
//                        storages it names (key, dtype, numel), then the input is wrapped in a torch
//                        zip with those storages (the library's zip writer) and that file is read.
//                        Most mutants of a whole file die in the zip checks; this way the pickle
//                        interpreter and the tensor checks see mutants too.
// A file that loads must keep its promises: names unique, each tensor's bytes prod(shape) * itemsize
// and readable (ASan checks the reads stay inside the mapped storage), load_torch_state_dict equal to
// the reader's entries read one by one, and save_torch_state_dict then load of what was read giving
// it back exactly. Tensors of more than 64 MiB are not read: a stride-0 view may claim far more bytes
// than the file holds (allowed, as in torch), and allocating them is require_memory's business.
// Seeds: corpus/torch_checkpoint/*.bin are copies of tests/format/torch_fixtures fixtures (torch 1.13), *.pkl
// their data.pkl entries.
#include <bitgrad/format/torch_checkpoint.hpp>

#include <cstring>
#include <map>
#include <set>
#include <vector>

#include "harness.hpp"

namespace {

constexpr uint64_t kMaxRead = uint64_t(64) << 20;

void load_and_check(const std::string& path, std::size_t size) {
    const bitgrad::io::TorchCheckpointReader reader(path);
    std::set<std::string> names;
    std::vector<bitgrad::io::TorchTensor> read;
    uint64_t total = 0;
    for (const auto& e : reader.entries()) {
        FUZZ_EXPECT(names.insert(e.name).second, "tensor " << e.name << " returned twice");
        const uint64_t item = bitgrad::io::safetensors_dtype_size(e.dtype);
        FUZZ_EXPECT(item > 0 && e.shape.numel() >= 0 && e.bytes() == uint64_t(e.shape.numel()) * item,
                    "tensor " << e.name << ": " << e.bytes() << " bytes for shape " << e.shape << " of " << e.dtype);
        FUZZ_EXPECT(int(e.stride.size()) == e.shape.ndim(), "tensor " << e.name << ": strides and shape differ");
        if (bitgrad::io::TorchCheckpointReader::contiguous(e))
            FUZZ_EXPECT(e.bytes() <= size, "contiguous tensor " << e.name << " of " << e.bytes() << " bytes in a "
                                                                << size << "-byte file");
        if (e.bytes() > kMaxRead) continue;
        std::vector<uint8_t> bytes = reader.read(e);
        FUZZ_EXPECT(bytes.size() == e.bytes(), "tensor " << e.name << ": read " << bytes.size() << " bytes");
        total += bytes.size();
        read.push_back({e.name, e.dtype, e.shape, std::move(bytes)});
    }
    if (read.size() != reader.entries().size() || total > kMaxRead) return;
    const auto loaded = bitgrad::io::load_torch_state_dict(path);
    FUZZ_EXPECT(loaded.size() == read.size(),
                "load_torch_state_dict returned " << loaded.size() << " tensors, the reader " << read.size());
    for (std::size_t i = 0; i < read.size(); ++i)
        FUZZ_EXPECT(loaded[i].name == read[i].name && loaded[i].bytes == read[i].bytes,
                    "load_torch_state_dict differs from the reader at tensor " << read[i].name);
    // Written again and read back: the same tensors (a refusal here is a finding, not a refusal).
    std::vector<bitgrad::io::SafetensorsBlob> blobs;
    for (const auto& t : read) blobs.push_back({t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size()});
    const std::string copy = path + ".resaved";
    std::vector<bitgrad::io::TorchTensor> again;
    try {
        bitgrad::io::save_torch_state_dict(copy, blobs);
        again = bitgrad::io::load_torch_state_dict(copy);
    } catch (const bitgrad::Error& e) {
        FUZZ_EXPECT(false, "what was read cannot be saved and read again: " << e.what());
    }
    std::filesystem::remove(copy);
    FUZZ_EXPECT(again.size() == read.size(), "re-saved file holds " << again.size() << " tensors, not " << read.size());
    for (std::size_t i = 0; i < read.size(); ++i)
        FUZZ_EXPECT(again[i].name == read[i].name && again[i].dtype == read[i].dtype &&
                        again[i].shape == read[i].shape && again[i].bytes == read[i].bytes,
                    "re-saved tensor " << read[i].name << " differs");
}

// The input as archive/data.pkl with the storages its pickle names; false when the pickle is
// refused already (or names more than 1 MiB of storage).
bool wrap_pickle(const std::string& path, const uint8_t* data, std::size_t size) {
    std::map<std::string, std::pair<std::string, int64_t>> storages;  // key -> (dtype, numel)
    auto note = [&](const std::string& cls, const std::string& key, int64_t numel) -> int64_t {
        storages.emplace(key, std::make_pair(std::string(bitgrad::io::detail::torch_storage_dtype(cls)), numel));
        return 0;
    };
    bitgrad::io::detail::PickleMachine dry(data, size, "dry run", note);
    dry.run();
    uint64_t total = 0;
    for (const auto& [key, s] : storages) {
        const uint64_t item = bitgrad::io::safetensors_dtype_size(s.first);
        if (uint64_t(s.second) > (uint64_t(1) << 20) / item) return false;
        total += uint64_t(s.second) * item;
    }
    if (total > (uint64_t(1) << 20)) return false;
    bitgrad::write_file_atomic(path, [&](int fd, const std::string& tmp) {
        bitgrad::io::detail::TorchZipWriter zip(fd, tmp, "archive");
        zip.add("data.pkl", data, size);
        for (const auto& [key, s] : storages) {
            std::vector<uint8_t> bytes(std::size_t(uint64_t(s.second) * bitgrad::io::safetensors_dtype_size(s.first)));
            for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 37 + key.size());
            zip.add("data/" + key, bytes.data(), bytes.size());
        }
        zip.add("version", "3\n", 2);
        zip.finish();
    });
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    const std::string& path = fuzz::write_temp_file("torch_checkpoint", data, size);
    try {
        if (size >= 4 && std::memcmp(data, "PK\3\4", 4) == 0) {
            load_and_check(path, size);
        } else if (wrap_pickle(path, data, size)) {
            load_and_check(path, std::size_t(std::filesystem::file_size(path)));
        }
    } catch (const bitgrad::Error&) {  // a refusal: the expected outcome for most inputs
    }
    return 0;
}
