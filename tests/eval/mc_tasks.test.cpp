#include "helpers.hpp"

using namespace bitgrad;

namespace mc_tasks_test {
nlohmann::json record(const std::string& text) { return nlohmann::json::parse(text); }
}  // namespace mc_tasks_test

TEST_CASE("the tasks are one table - a name finds its task and an unknown name is refused with the list") {
    CHECK(eval::mc_task_names() == "boolq, piqa, hellaswag, winogrande, arc_easy, arc_challenge, openbookqa");
    CHECK(eval::mc_task("boolq").id == eval::McTaskId::boolq);
    CHECK(eval::mc_task("openbookqa").id == eval::McTaskId::openbookqa);
    CHECK(!eval::mc_task("boolq").acc_norm);
    CHECK(eval::mc_task("arc_challenge").acc_norm);
    CHECK_THROWS_WITH_AS(eval::mc_task("BoolQ"),
                         doctest::Contains("unknown task 'BoolQ', expected one of: boolq, piqa, hellaswag, winogrande, "
                                           "arc_easy, arc_challenge, openbookqa"),
                         Error);
}

// lm-eval 0.4.2 scores super_glue/boolq: "{{passage}}\nQuestion: {{question}}?\nAnswer:" where the
// passage is "<title> -- <passage>"; the expected strings below are written by hand from that template.
TEST_CASE("boolq: Google's files get the title joined - SuperGLUE's are taken as they are - same context") {
    using mc_tasks_test::record;
    const std::string expected =
        "Ethanol fuel -- All biomass goes through at least some of these steps: it needs to be grown, collected, "
        "dried, fermented, distilled, and burned.\nQuestion: does ethanol take more energy make that produces?\n"
        "Answer:";
    SUBCASE("Google's dev.jsonl: {question, title, answer, passage}") {
        const auto it = eval::mc_item_from_record(
            "boolq", record(R"({"question": "does ethanol take more energy make that produces",
            "title": "Ethanol fuel", "answer": false, "passage": "All biomass goes through at least some of these steps: it needs to be grown, collected, dried, fermented, distilled, and burned."})"),
            "dev.jsonl:1");
        CHECK(it.context == expected);
        CHECK(it.choices == std::vector<std::string>{"no", "yes"});
        CHECK(it.gold == 0);
        CHECK(it.requests()[1].second == " yes");
    }
    SUBCASE("SuperGLUE's BoolQ/val.jsonl: {question, passage with the title, idx, label: true/false}") {
        auto it = eval::mc_item_from_record("boolq",
                                            record(R"({"question": "does ethanol take more energy make that produces",
            "passage": "Ethanol fuel -- All biomass goes through at least some of these steps: it needs to be grown, collected, dried, fermented, distilled, and burned.",
            "idx": 0, "label": false})"),
                                            "val.jsonl:1");
        CHECK(it.context == expected);
        CHECK(it.gold == 0);
        CHECK(it.id == "0");
        it = eval::mc_item_from_record("boolq", record(R"({"question": "is house tax and property tax are same",
            "passage": "Property tax -- Property tax or 'house tax' is a local tax on buildings, along with appurtenant land.",
            "idx": 1, "label": true})"),
                                       "val.jsonl:2");
        CHECK(it.context ==
              "Property tax -- Property tax or 'house tax' is a local tax on buildings, along with appurtenant "
              "land.\nQuestion: is house tax and property tax are same?\nAnswer:");
        CHECK(it.gold == 1);
    }
    SUBCASE("Hugging Face's super_glue rows: label 0 (False) / 1 (True)") {
        const auto it = eval::mc_item_from_record(
            "boolq", record(R"({"question": "is it", "passage": "T -- P.", "idx": 7, "label": 1})"), "hf:8");
        CHECK(it.context == "T -- P.\nQuestion: is it?\nAnswer:");
        CHECK(it.gold == 1);
        CHECK(it.id == "7");
    }
}

TEST_CASE("boolq: records that cannot give lm-eval's context or answer are refused naming the field") {
    using mc_tasks_test::record;
    // Hugging Face's boolq dataset: answer and passage, the title dropped.
    CHECK_THROWS_WITH_AS(
        eval::mc_item_from_record("boolq", record(R"({"question": "q", "answer": true, "passage": "p"})"), "b:1"),
        doctest::Contains("b:1: missing field \"title\": lm-eval scores SuperGLUE's passages, \"<title> -- "
                          "<passage>\""),
        Error);
    CHECK_THROWS_WITH_AS(
        eval::mc_item_from_record("boolq",
                                  record(R"({"question": "q", "title": "t", "passage": "p", "answer": "yes"})"), "b:2"),
        doctest::Contains("b:2: field \"answer\" must be true or false"), Error);
    for (const char* bad : {R"("True")", "2", "-1", "0.0", "null"})
        CHECK_THROWS_WITH_AS(
            eval::mc_item_from_record(
                "boolq", record(std::string(R"({"question": "q", "passage": "t -- p", "label": )") + bad + "}"), "b:3"),
            doctest::Contains("b:3: field \"label\" must be true or false (SuperGLUE's files) or 0 or 1"), Error);
    CHECK_THROWS_WITH_AS(
        eval::mc_item_from_record(
            "boolq", record(R"({"question": "q", "title": "t", "passage": "p", "answer": true, "label": 1})"), "b:4"),
        doctest::Contains("b:4: fields \"answer\" and \"label\" together"), Error);
    CHECK_THROWS_WITH_AS(
        eval::mc_item_from_record(
            "boolq", record(R"({"question": "q", "title": "t", "passage": "t -- p", "label": true})"), "b:5"),
        doctest::Contains("b:5: field \"title\" beside \"label\""), Error);
    CHECK_THROWS_WITH_AS(eval::mc_item_from_record("boolq", record(R"({"question": "q", "passage": "p"})"), "b:6"),
                         doctest::Contains("b:6: missing field \"answer\" (Google's BoolQ files) or \"label\""), Error);
}
