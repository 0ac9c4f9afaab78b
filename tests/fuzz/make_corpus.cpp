// Writes the seed corpora of the fuzz targets: small valid files made by the library's own writers,
// and a few corrupt ones made from them by hand-chosen edits (named bad-*). Deterministic: running
// it again gives the same bytes, so the committed corpus can be checked against it.
//
//   fuzz_make_corpus tests/fuzz/corpus      (writes corpus/<reader>/<name> for every reader)
#include <bitgrad/data/token_shard.hpp>
#include <bitgrad/format/safetensors.hpp>
#include <bitgrad/infer/packed_file.hpp>
#include <bitgrad/io/config_json.hpp>
#include <bitgrad/nn/llama.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

namespace fs = std::filesystem;
using namespace bitgrad;

namespace {

std::string read(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write(const fs::path& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), std::streamsize(bytes.size()));
}
std::string le64(uint64_t v) {
    std::string s(8, '\0');
    std::memcpy(s.data(), &v, 8);
    return s;
}
// A safetensors file from header text and data bytes, for layouts save_safetensors never writes.
std::string raw_safetensors(std::string header, const std::string& data) {
    while (header.size() % 8) header += ' ';
    return le64(header.size()) + header + data;
}
template <class T>
Tensor<T> iota(const Shape& s) {
    Tensor<T> t(s);
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = T(i) * T(0.5) - T(1);
    return t;
}

void safetensors(const fs::path& dir) {
    io::save_safetensors<float>(dir / "two-f32.safetensors", {{"a", iota<float>({2, 3})}, {"b", iota<float>({4})}},
                                {{"format", "pt"}});
    io::save_safetensors<float>(dir / "empty-and-scalar-f32.safetensors",
                                {{"e", iota<float>({0})}, {"s", iota<float>(Shape{})}, {"z", iota<float>({3, 0, 2})}});
    io::save_safetensors<float>(dir / "six-dims-f32.safetensors", {{"w", iota<float>({1, 1, 1, 1, 2, 2})}});
    io::save_safetensors<float>(dir / "metadata-only.safetensors", {}, {{"step", "7"}, {"note", ""}});
    io::save_safetensors<double>(dir / "one-f64.safetensors", {{"w", iota<double>({2, 2})}});
    const std::string good = read(dir / "two-f32.safetensors");
    write(dir / "bad-header-length-2pow63.safetensors", le64(uint64_t(1) << 63) + good.substr(8));
    write(dir / "bad-bytes-left-over.safetensors", good + "junk");
    write(dir / "bad-header-not-json.safetensors", raw_safetensors("{\"a\":{\"dtype\":\"F32\",", std::string(4, '\0')));
    write(
        dir / "bad-duplicate-name.safetensors",
        raw_safetensors(
            R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
            std::string(8, '\0')));
    write(
        dir / "bad-overlap.safetensors",
        raw_safetensors(
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
            std::string(8, '\0')));
    write(dir / "bad-dtype.safetensors",
          raw_safetensors(R"({"a":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}})", std::string(4, '\0')));
}

void token_shard(const fs::path& dir) {
    std::vector<uint32_t> ids(20);
    for (uint32_t i = 0; i < 20; ++i) ids[i] = (i * 37) % 300;
    data::write_token_shard(dir / "width2.bin", ids, 300);
    data::write_token_shard(dir / "width4.bin", {0, 1, 69999, 65536, 12}, 70000);
    data::write_token_shard(dir / "empty.bin", {}, 10);
    data::write_token_shard(dir / "one-token.bin", {3}, 4);
    data::write_token_shard(dir / "vocab-1.bin", {0, 0, 0}, 1);
    const std::string good = read(dir / "width2.bin");
    std::string b = good;
    b[0] = 'X';
    write(dir / "bad-magic.bin", b);
    write(dir / "bad-truncated.bin", good.substr(0, good.size() - 1));
    b = good;
    b[12] = 3;
    write(dir / "bad-width-3.bin", b);
    b = good;
    b[32] = char(0xff), b[33] = char(0xff);  // token 0 := 65535 >= vocab 300
    write(dir / "bad-id-over-vocab.bin", b);
    b = good;
    for (int i = 16; i < 24; ++i) b[std::size_t(i)] = char(0xff);  // count = 2^64 - 1
    write(dir / "bad-count-2pow64-1.bin", b);
}

void config_json(const fs::path& dir) {
    io::save_config(dir / "tiny.json", nn::LlamaConfig::preset("tiny"));
    nn::LlamaConfig c = nn::LlamaConfig::preset("tiny");
    c.num_key_value_heads = 2, c.binarized = true, c.ste = Ste::Clipped, c.rope_theta = 500000.0, c.rms_norm_eps = 1e-6;
    io::save_config(dir / "gqa-binarized.json", c);
    write(dir / "required-only.json",
          R"({"vocab_size":64,"hidden_size":16,"intermediate_size":32,"num_hidden_layers":2,"num_attention_heads":4})");
    write(dir / "bad-heads-do-not-divide.json",
          R"({"vocab_size":64,"hidden_size":18,"intermediate_size":32,"num_hidden_layers":2,"num_attention_heads":4})");
    write(
        dir / "bad-wrong-types.json",
        R"({"vocab_size":"64","hidden_size":16.0,"intermediate_size":32,"num_hidden_layers":2,"num_attention_heads":4,"bitgrad_binarized":1,"bitgrad_ste":null})");
    write(dir / "bad-missing-field.json",
          R"({"vocab_size":64,"hidden_size":16,"intermediate_size":32,"num_hidden_layers":2})");
    write(dir / "bad-not-an-object.json", R"([{"vocab_size":64}])");
    write(dir / "bad-truncated.json", R"({"vocab_size":64,"hidden_size":16,"interm)");
}

// A tiny FBI-LLM (in = 24 and 40: partial sign words, GQA) packed, and damaged copies of it.
void packed_file(const fs::path& dir) {
    nn::LlamaConfig c;
    c.vocab_size = 19, c.hidden_size = 24, c.intermediate_size = 40, c.num_hidden_layers = 1;
    c.num_attention_heads = 4, c.num_key_value_heads = 2, c.max_position_embeddings = 8, c.binarized = true;
    Rng rng(5);
    const infer::PackedLlama packed{nn::FbiLlama<float>(c, rng)};
    infer::save_packed(dir / "tiny.safetensors", packed, {{"source", "fuzz_make_corpus"}});
    Rng rng8(5);
    infer::save_packed(dir / "tiny-int8-tables.safetensors",
                       infer::PackedLlama(nn::FbiLlama<float>(c, rng8), infer::TableFormat::Int8));
    // With a tokenizer's bytes (not a real SentencePiece model: the reader checks size and CRC only).
    infer::save_packed(dir / "tiny-with-tokenizer.safetensors", packed, {}, std::string("not really a model\n"));
    const std::string good = read(dir / "tiny.safetensors");
    uint64_t header = 0;
    std::memcpy(&header, good.data(), 8);
    const std::string head = good.substr(8, std::size_t(header)), body = good.substr(8 + std::size_t(header));
    auto with_header = [&](std::string h) { return raw_safetensors(std::move(h), body); };
    auto replace = [](std::string s, const std::string& from, const std::string& to) {
        const auto at = s.find(from);
        if (at == std::string::npos)
            throw std::runtime_error("fuzz_make_corpus: no \"" + from + "\" in the packed header");
        return s.replace(at, from.size(), to);
    };
    write(dir / "bad-format-version.safetensors",
          with_header(replace(head, "\"format_version\":\"1\"", "\"format_version\":\"9\"")));
    write(dir / "bad-not-binarized.safetensors",
          with_header(replace(head, "\\\"bitgrad_binarized\\\":true", "\\\"bitgrad_binarized\\\":false")));
    write(dir / "bad-truncated.safetensors", good.substr(0, good.size() - 3));
    // The last byte of down_proj's first sign row (in = 40: bits 40..63 are padding) set to 0xff.
    std::string b = good;
    const std::string key = "\"model.layers.0.mlp.down_proj.weight_signs\"";
    const auto at = head.find(key);
    if (at == std::string::npos) throw std::runtime_error("fuzz_make_corpus: no down_proj signs in the packed header");
    const auto offsets = head.find("\"data_offsets\":[", at) + 16;
    const uint64_t begin = std::stoull(head.substr(offsets));
    b[8 + std::size_t(header) + std::size_t(begin) + 7] = char(0xff);
    write(dir / "bad-padding-bits.safetensors", b);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: fuzz_make_corpus CORPUS_DIR   (e.g. tests/fuzz/corpus)\n";
        return 2;
    }
    try {
        const std::pair<const char*, void (*)(const fs::path&)> readers[] = {{"safetensors", safetensors},
                                                                             {"token_shard", token_shard},
                                                                             {"config_json", config_json},
                                                                             {"packed_file", packed_file}};
        for (auto& [name, make] : readers) {
            const fs::path dir = fs::path(argv[1]) / name;
            fs::create_directories(dir);
            make(dir);
            std::cout << "wrote " << dir.string() << "\n";
        }
    } catch (const std::exception& e) {
        std::cerr << "fuzz_make_corpus: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
