// infer::is_packed_model / open_model: a file is a packed model, a directory a checkpoint.
#include "helpers.hpp"

#include <bitgrad/infer/open_model.hpp>

using namespace bitgrad;

TEST_CASE("is_packed_model: a file yes - a directory no - anything else an error naming the path") {
    testing::TempDir dir("open-model");
    testing::write_bytes(dir / "m.safetensors", "x");
    CHECK(infer::is_packed_model(dir / "m.safetensors"));
    CHECK_FALSE(infer::is_packed_model(dir.path));
    CHECK_THROWS_WITH_AS(
        infer::is_packed_model(dir / "none"),
        doctest::Contains("none: no such file or directory (a packed model file or a model directory)"), Error);
}
