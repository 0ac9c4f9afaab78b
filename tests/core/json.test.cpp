#include "helpers.hpp"

using namespace bitgrad;

using Words4 = std::array<uint64_t, 4>;  // (a comma inside a CHECK macro would split its arguments)

TEST_CASE("json_field converts only exact types in range and names the file and field") {
    const auto j = parse_json(R"({"i": 7, "neg": -3, "big": 4294967296, "f": 1.5, "s": "x", "b": true,
                                     "arr": [1, 2, 3, 4], "mixed": [1, "two"], "nested": {"a": 1}})",
                              "f.json");
    CHECK(json_field<int>(j, "i", "f.json") == 7);
    CHECK(json_field<int64_t>(j, "neg", "f.json") == -3);
    CHECK(json_field<int64_t>(j, "big", "f.json") == 4294967296);
    CHECK(json_field<double>(j, "i", "f.json") == 7.0);  // an integer is a number
    CHECK(json_field<std::string>(j, "s", "f.json") == "x");
    CHECK(json_field<bool>(j, "b", "f.json"));
    CHECK(json_field<Words4>(j, "arr", "f.json")[3] == 4);
    CHECK(json_field<std::vector<double>>(j, "arr", "f.json").size() == 4);
    CHECK(json_field_or<int>(j, "absent", 42, "f.json") == 42);
    CHECK_THROWS_WITH_AS(json_field<int>(j, "absent", "f.json"), doctest::Contains("f.json: missing field \"absent\""),
                         Error);
    CHECK_THROWS_WITH_AS(json_field<int>(j, "big", "f.json"),
                         doctest::Contains("field \"big\" must be an integer (in range), got 4294967296"), Error);
    CHECK_THROWS_WITH_AS(json_field<uint64_t>(j, "neg", "f.json"), doctest::Contains("must be a non-negative integer"),
                         Error);
    CHECK_THROWS_WITH_AS(json_field<int>(j, "f", "f.json"), doctest::Contains("got 1.5"), Error);
    CHECK_THROWS_WITH_AS(json_field<int>(j, "s", "f.json"), doctest::Contains("got \"x\""), Error);
    CHECK_THROWS_WITH_AS(json_field<Words4>(j, "mixed", "f.json"), doctest::Contains("must be an array"), Error);
    CHECK_THROWS_WITH_AS(json_field<std::vector<double>>(j, "nested", "f.json"), doctest::Contains("must be an array"),
                         Error);
    CHECK_THROWS_WITH_AS(json_field_or<int>(j, "s", 1, "f.json"), doctest::Contains("field \"s\" must be an integer"),
                         Error);
}

TEST_CASE("parse_json accepts 64 levels of nesting and refuses 65") {
    CHECK(parse_json(std::string(64, '[') + std::string(64, ']'), "ok.json").is_array());
    CHECK_THROWS_WITH_AS(parse_json(std::string(65, '[') + std::string(65, ']'), "d.json"),
                         doctest::Contains("d.json: JSON nested deeper than 64 levels"), Error);
    CHECK_THROWS_WITH_AS(parse_json(std::string(33, '{'), "o.json"), doctest::Contains("o.json: not valid JSON"),
                         Error);
    CHECK_THROWS_WITH_AS(parse_json("{\"a\": [1, 2", "t.json"), doctest::Contains("t.json: not valid JSON"), Error);
}
