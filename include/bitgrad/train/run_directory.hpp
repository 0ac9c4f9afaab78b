#pragma once
// A training run's output directory, one run a directory:
//
//   <out>/checkpoints/step-N/   Trainer::save (io/checkpoint.hpp: complete or ignored)
//   <out>/final/                the model at the end (or at a stop)
//   <out>/metrics.jsonl         one JSON record a logged step ({"step": N, ...}; MetricsLog below)
//
// Starting a run where another left files would mix the two (the old checkpoints beside the new
// ones, both runs' records in one metrics.jsonl), so open_run_directory makes the caller say what
// it wants:
//   Fresh      refuses a directory that holds any of the three, naming what is there;
//   Overwrite  deletes the three first (the caller asked for it explicitly);
//   Resume     continues the newest complete checkpoint, and drops the metrics records past its
//              step (steps logged after that save, before the run was stopped, are run again); with
//              no checkpoint there is nothing to continue and the directory is prepared as Overwrite
//              would (a note says so).
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bitgrad/core/atomic_file.hpp"
#include "bitgrad/core/error.hpp"
#include "bitgrad/io/checkpoint.hpp"

namespace bitgrad::train {

enum class RunStart { Fresh, Resume, Overwrite };

struct RunDirectory {
    std::filesystem::path root;

    std::filesystem::path checkpoints() const { return root / "checkpoints"; }
    std::filesystem::path final_model() const { return root / "final"; }
    std::filesystem::path metrics() const { return root / "metrics.jsonl"; }

    // What a previous run left here ("checkpoints/", "final/", "metrics.jsonl"); empty: nothing.
    std::vector<std::string> leftovers() const {
        std::vector<std::string> found;
        std::error_code ec;
        if (std::filesystem::is_directory(checkpoints(), ec) && !std::filesystem::is_empty(checkpoints(), ec))
            found.push_back("checkpoints/");
        if (std::filesystem::exists(final_model(), ec)) found.push_back("final/");
        if (std::filesystem::exists(metrics(), ec)) found.push_back("metrics.jsonl");
        return found;
    }
};

struct OpenedRun {
    RunDirectory dir;
    std::optional<std::filesystem::path> checkpoint;  // Resume: the checkpoint to continue from
    std::vector<std::string> notes;                   // what was done to the directory, for the log
};

namespace detail {
inline std::string joined(const std::vector<std::string>& items) {
    std::string s;
    for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
    return s;
}

// Keeps the records of metrics.jsonl with step <= last_step (a crash-safe rewrite); returns how
// many were dropped. A line that is not a record with a step is kept as it is.
inline int64_t trim_metrics(const std::filesystem::path& path, int64_t last_step) {
    std::ifstream in(path);
    if (!in) return 0;
    std::string kept, line;
    int64_t dropped = 0;
    while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
            j["step"].get<int64_t>() > last_step) {
            ++dropped;
            continue;
        }
        kept += line + "\n";
    }
    in.close();
    if (dropped > 0) write_text_atomic(path, kept);
    return dropped;
}
}  // namespace detail

inline OpenedRun open_run_directory(const std::filesystem::path& out, RunStart how,
                                    const std::function<void(const std::string&)>& warn = {}) {
    OpenedRun run{RunDirectory{out}, std::nullopt, {}};
    const RunDirectory& d = run.dir;
    auto start_over = [&](const std::vector<std::string>& left) {
        if (left.empty()) return;
        remove_tree(d.checkpoints());
        remove_tree(d.final_model());
        remove_tree(d.metrics());
        run.notes.push_back("deleted the previous run's " + detail::joined(left) + " in " + out.string());
    };
    const std::vector<std::string> left = d.leftovers();
    switch (how) {
        case RunStart::Fresh:
            BITGRAD_CHECK(left.empty(), out.string() << " holds a training run (" << detail::joined(left)
                                                     << "): continue it (resume) or delete it (overwrite); "
                                                        "two runs never share a directory");
            break;
        case RunStart::Overwrite: start_over(left); break;
        case RunStart::Resume:
            run.checkpoint = io::latest_checkpoint(
                d.checkpoints(), warn ? warn : [](const std::string&) {});
            if (!run.checkpoint) {
                run.notes.push_back("no complete checkpoint under " + d.checkpoints().string() +
                                    ": starting from step 0");
                start_over(left);
                break;
            }
            if (const int64_t n = detail::trim_metrics(
                    d.metrics(), io::detail::parse_step_dir(run.checkpoint->filename().string()).first))
                run.notes.push_back("dropped " + std::to_string(n) + " record(s) of " + d.metrics().string() +
                                    " logged after the checkpoint (those steps run again)");
            break;
    }
    ensure_directory(out);
    return run;
}

// metrics.jsonl: one JSON object a line, appended and flushed as each step is logged, so that a
// killed run keeps every record up to its last log line.
class MetricsLog {
public:
    explicit MetricsLog(const std::filesystem::path& path) : path_(path), file_(path, std::ios::app) {
        BITGRAD_CHECK(file_, "cannot open " << path.string() << " for appending");
    }
    void write(const nlohmann::json& record) {
        file_ << record.dump() << "\n";
        file_.flush();
        BITGRAD_CHECK(file_, "writing " << path_.string() << " failed (disk full?)");
    }

private:
    std::filesystem::path path_;
    std::ofstream file_;
};

}  // namespace bitgrad::train
