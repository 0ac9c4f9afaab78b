// Fuzz target: io::load_config (from the file) and io::config_from_json (on the parsed document).
// An accepted config must validate, and must survive config_to_json -> text -> config_from_json
// unchanged: what bitgrad accepts it must be able to save and read back (checkpoints do exactly that).
#include <bitgrad/io/config_json.hpp>

#include "harness.hpp"

namespace {

void check_round_trip(const bitgrad::nn::LlamaConfig& c) {
    try {
        c.validate();
    } catch (const bitgrad::Error& e) { FUZZ_EXPECT(false, "accepted config fails validate(): " << e.what()); }
    const std::string saved = bitgrad::io::config_to_json(c).dump(2);
    bitgrad::nn::LlamaConfig back;
    try {
        back = bitgrad::io::config_from_json(nlohmann::json::parse(saved), "round trip");
    } catch (const std::exception& e) {
        FUZZ_EXPECT(false, "accepted config cannot be read back after saving: " << e.what() << "\nsaved:\n" << saved);
    }
    FUZZ_EXPECT(back.vocab_size == c.vocab_size && back.hidden_size == c.hidden_size &&
                    back.intermediate_size == c.intermediate_size && back.num_hidden_layers == c.num_hidden_layers &&
                    back.num_attention_heads == c.num_attention_heads &&
                    back.num_key_value_heads == c.num_key_value_heads &&
                    back.max_position_embeddings == c.max_position_embeddings && back.rms_norm_eps == c.rms_norm_eps &&
                    back.rope_theta == c.rope_theta && back.initializer_range == c.initializer_range &&
                    back.binarized == c.binarized && back.ste == c.ste,
                "config changed in a save/load round trip:\n"
                    << saved);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    const std::string& path = fuzz::write_temp_file("config_json", data, size);
    try {
        check_round_trip(bitgrad::io::load_config(path));
    } catch (const bitgrad::Error&) {  // a refusal: the expected outcome for most inputs
    }
    // The document-level entry point, also on valid JSON that is not an object.
    const auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;
    try {
        check_round_trip(bitgrad::io::config_from_json(j, "fuzz input"));
    } catch (const bitgrad::Error&) {}
    return 0;
}
