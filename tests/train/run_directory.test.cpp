#include "helpers.hpp"

#include <bitgrad/train/run_directory.hpp>

using namespace bitgrad;

TEST_CASE("a run directory holds one run: Fresh refuses leftovers - Overwrite deletes them - Resume trims metrics") {
    testing::TempDir dir("run-directory");
    const auto out = dir / "run";
    // An empty or new directory: nothing to refuse.
    CHECK(train::open_run_directory(out, train::RunStart::Fresh).notes.empty());
    CHECK(std::filesystem::is_directory(out));

    // What a run leaves: a complete checkpoint at step 10, final/, and records of steps 5..15.
    const auto step10 = out / "checkpoints" / "step-00000010";
    std::filesystem::create_directories(step10);
    testing::write_bytes(step10 / io::kCheckpointMarker, "");
    std::filesystem::create_directories(out / "final");
    testing::write_bytes(out / "metrics.jsonl",
                         "{\"step\":5,\"loss\":3.0}\n{\"step\":10,\"loss\":2.5}\n"
                         "{\"step\":15,\"loss\":2.0}\n");

    CHECK_THROWS_WITH_AS(train::open_run_directory(out, train::RunStart::Fresh),
                         doctest::Contains("holds a training run (checkpoints/, final/, metrics.jsonl)"), Error);
    // Refusing touched nothing.
    CHECK(std::filesystem::exists(step10));

    const auto resumed = train::open_run_directory(out, train::RunStart::Resume);
    REQUIRE(resumed.checkpoint);
    CHECK(resumed.checkpoint->filename() == "step-00000010");
    // The step-15 record came after the checkpoint: that step runs again, so its record goes.
    CHECK(testing::read_bytes(out / "metrics.jsonl") == "{\"step\":5,\"loss\":3.0}\n{\"step\":10,\"loss\":2.5}\n");
    REQUIRE(resumed.notes.size() == 1);
    CHECK(resumed.notes[0].find("dropped 1 record(s)") != std::string::npos);

    const auto over = train::open_run_directory(out, train::RunStart::Overwrite);
    CHECK_FALSE(std::filesystem::exists(out / "checkpoints"));
    CHECK_FALSE(std::filesystem::exists(out / "final"));
    CHECK_FALSE(std::filesystem::exists(out / "metrics.jsonl"));
    CHECK(std::filesystem::is_directory(out));
    REQUIRE(over.notes.size() == 1);
    CHECK(train::open_run_directory(out, train::RunStart::Fresh).notes.empty());
}

TEST_CASE("resume without a complete checkpoint starts over: no records of the lost steps stay") {
    testing::TempDir dir("run-directory-nockpt");
    const auto out = dir / "run";
    std::filesystem::create_directories(out / "checkpoints" / "step-00000005.tmp");  // an interrupted save
    testing::write_bytes(out / "metrics.jsonl", "{\"step\":1,\"loss\":3.0}\n");
    std::vector<std::string> warnings;
    const auto run =
        train::open_run_directory(out, train::RunStart::Resume, [&](const std::string& w) { warnings.push_back(w); });
    CHECK_FALSE(run.checkpoint);
    CHECK(warnings.size() == 1);
    CHECK_FALSE(std::filesystem::exists(out / "metrics.jsonl"));
    REQUIRE(run.notes.size() == 2);
    CHECK(run.notes[0].find("starting from step 0") != std::string::npos);
}

TEST_CASE("MetricsLog appends one record a line") {
    testing::TempDir dir("metrics-log");
    {
        train::MetricsLog log(dir / "m.jsonl");
        log.write({{"step", 1}});
        log.write({{"step", 2}});
    }
    train::MetricsLog again(dir / "m.jsonl");
    again.write({{"step", 3}});
    CHECK(testing::read_bytes(dir / "m.jsonl") == "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n");
}
