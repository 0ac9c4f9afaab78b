#include "helpers.hpp"

#include <cstring>

using namespace bitgrad;

namespace {
// A safetensors file from a header JSON string and a data section.
std::string make_file(const std::string& header, const std::string& data) {
    std::string out(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(out.data(), &n, 8);
    return out + header + data;
}
}  // namespace

TEST_CASE("safetensors round trip keeps names - order - shapes - values and metadata") {
    testing::TempDir dir("st");
    Rng rng(1);
    std::vector<std::pair<std::string, Tensor<float>>> ts = {{"b.weight", Tensor<float>::randn({3, 5}, rng)},
                                                             {"a.wscale", Tensor<float>::randn({1, 5}, rng)},
                                                             {"empty", Tensor<float>::zeros({0, 4})}};
    io::save_safetensors(dir / "m.safetensors", ts, {{"format", "pt"}});
    auto f = io::load_safetensors<float>((dir / "m.safetensors").string());
    REQUIRE(f.tensors.size() == 3);
    CHECK(f.tensors[0].first == "b.weight");
    CHECK(f.metadata.at("format") == "pt");
    CHECK(max_abs_diff(f.by_name().at("a.wscale"), ts[1].second) == 0);
    CHECK(f.by_name().at("empty").shape() == Shape{0, 4});
    // The header is padded to 8 bytes and the file length is exactly 8 + header + data.
    const std::string bytes = testing::read_bytes(dir / "m.safetensors");
    uint64_t n;
    std::memcpy(&n, bytes.data(), 8);
    CHECK(n % 8 == 0);
    CHECK(bytes.size() == 8 + n + 4 * (15 + 5));
}

TEST_CASE("corrupt safetensors files are refused - naming the tensor or field") {
    testing::TempDir dir("st-corrupt");
    const std::string f32x2(8, '\0');
    auto expect = [&](const std::string& bytes, const char* what) {
        testing::write_bytes(dir / "bad.safetensors", bytes);
        CHECK_THROWS_WITH_AS(io::load_safetensors<float>((dir / "bad.safetensors").string()), doctest::Contains(what),
                             Error);
    };
    expect("abc", "too short");
    std::string huge(8, '\0');
    const uint64_t big = 200'000'000;
    std::memcpy(huge.data(), &big, 8);
    expect(huge, "exceeds the 100 MB cap");
    std::string longer(8, '\0');
    const uint64_t l = 1000;
    std::memcpy(longer.data(), &l, 8);
    expect(longer + "{}", "larger than the file");
    expect(make_file("{not json", ""), "not valid JSON");
    expect(make_file(R"({"t":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}})", "ab"),
           "tensor t: dtype I8, expected F32");
    expect(make_file(R"({"t":{"dtype":"F32","shape":[2]}})", f32x2), "tensor t: missing or malformed data_offsets");
    expect(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", f32x2),
           "outside the 8-byte data section");
    expect(make_file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f32x2),
           "tensor t: 8 bytes for shape [3], expected 12");
    expect(make_file(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", f32x2),
           "has more than 2^62 elements");
    // numel fits but numel * 4 bytes wraps to 0: must not match empty offsets.
    expect(make_file(R"({"t":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", ""),
           "tensor t: shape [4611686018427387904] needs more than 2^62 bytes");
    expect(make_file(R"({"t":{"dtype":"F32","shape":[1152921504606846977],"data_offsets":[0,0]}})", ""),
           "tensor t: shape [1152921504606846977] needs more than 2^62 bytes");
    // A zero extent does not excuse a huge one.
    expect(make_file(R"({"t":{"dtype":"F32","shape":[0,9223372036854775808],"data_offsets":[0,0]}})", ""),
           "tensor t: shape [0,9223372036854775808] has more than 2^62 elements");
    expect(make_file(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", ""),
           "tensor t: shape entries must be non-negative integers");
    expect(make_file(std::string(70, '[') + std::string(70, ']'), ""), "nested deeper than 64");
    expect(
        make_file(
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
            f32x2),
        "overlap or leave a hole");
    expect(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", f32x2),
           "starts at byte 4, expected 0");
    expect(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f32x2), "4 bytes left over");
    expect(
        make_file(
            R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
            f32x2),
        "tensor a appears twice");
    expect(make_file(R"([1,2])", ""), "not a JSON object");
}

TEST_CASE("re-saving over a file that is being read writes a new file (no in-place overwrite)") {
    testing::TempDir dir("st-remap");
    Rng rng(2);
    std::vector<std::pair<std::string, Tensor<float>>> ts = {{"w", Tensor<float>::randn({64}, rng)}};
    io::save_safetensors(dir / "m.safetensors", ts);
    MappedFile mapped((dir / "m.safetensors").string());  // a reader holds the old file mapped
    const std::string before(reinterpret_cast<const char*>(mapped.data()), mapped.size());
    ts[0].second.fill(0.f);
    io::save_safetensors(dir / "m.safetensors", ts);
    CHECK(std::string(reinterpret_cast<const char*>(mapped.data()), mapped.size()) == before);
    CHECK(io::load_safetensors<float>((dir / "m.safetensors").string()).tensors[0].second[3] == 0.f);
}
