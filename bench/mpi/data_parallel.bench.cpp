// Data-parallel training over MPI: the Trainer's step with the global batch split over the ranks,
// and the gradient sum's share of it. Run by bench/mpi/run.sh, which compares in one run
//   OMP_NUM_THREADS=2 mpirun -np 1 --bind-to none   (one process, two threads: the baseline)
//   OMP_NUM_THREADS=1 mpirun -np 2   (two processes, one thread each)
// Rank 0 prints JSON lines:
//   {"bench":"dp_allreduce", ...}  train::average_gradients over the model's parameters (the
//        130M gradient is 538 MB of fp32): seconds, and the algorithm bandwidth bytes / seconds
//   {"bench":"dp_step", ...}       tokens/s of Trainer steps (CE, bf16 where native) for a fixed
//        global batch, and the seconds a step spends in the gradient sum
//   usage: mpirun -np N data_parallel_bench [--preset 130M] [--batch 4] [--seq 256] [--steps 3]
#include <mpi.h>

#include <bitgrad/dist/mpi.hpp>
#include <chrono>
#include <cstdio>
#include <string>

#include "bench_util.hpp"

using namespace bitgrad;

int main(int argc, char** argv) {
    dist::MpiSession mpi(argc, argv);
    std::string preset = "130M";
    int64_t batch = 4, seq = 256, steps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--preset")
            preset = v;
        else if (a == "--batch")
            batch = std::stoll(v);
        else if (a == "--seq")
            seq = std::stoll(v);
        else if (a == "--steps")
            steps = std::stoll(v);
        else {
            if (mpi.rank() == 0) std::fprintf(stderr, "unknown option %s\n", a.c_str());
            return 2;
        }
    }
    const int N = mpi.size();
    if (batch % N != 0) {
        if (mpi.rank() == 0) std::fprintf(stderr, "--batch %lld is not a multiple of %d ranks\n", (long long)batch, N);
        return 2;
    }
    try {
        auto config = nn::LlamaConfig::preset(preset);
        config.binarized = true;
        config.max_position_embeddings = std::max(config.max_position_embeddings, seq);
        Rng init(1);
        nn::FbiLlama<float> model(config, init);

        // Wrap the collective to time it.
        train::DataParallel dp = dist::mpi_data_parallel();
        double sum_seconds = 0;
        auto sum_floats = dp.sum_floats;
        dp.sum_floats = [&](float* data, int64_t n) {
            const auto t0 = std::chrono::steady_clock::now();
            sum_floats(data, n);
            sum_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        };

        // 1. The gradient sum alone, on gradients of the model's shapes.
        auto params = model.parameters();
        for (auto& p : params) p.grad() = Tensor<float>::full(p.shape(), 1.f);
        MPI_Barrier(MPI_COMM_WORLD);
        const double allreduce_s = bench::best_seconds([&] { train::average_gradients(params, dp); }, 3);
        model.clear_grad();
        const double bytes = 4.0 * double(config.num_parameters());
        if (mpi.rank() == 0 && N > 1)  // one process has nothing to sum
            std::printf(
                "{\"bench\":\"dp_allreduce\",\"preset\":\"%s\",\"ranks\":%d,\"threads\":%d,\"bytes\":%.0f,"
                "\"seconds\":%.6f,\"gb_per_s\":%.2f}\n",
                preset.c_str(), N, num_threads(), bytes, allreduce_s, bytes / allreduce_s / 1e9);
        std::fflush(stdout);

        // 2. Trainer steps on random tokens, the global batch split over the ranks.
        const std::string shard_path = "/tmp/bitgrad-dp-bench-" + std::to_string(::getpid()) + ".bin";
        {
            std::vector<uint32_t> ids;
            Rng rng(2);
            for (int i = 0; i < 200000; ++i) ids.push_back(uint32_t(rng.uniform_int(uint64_t(config.vocab_size))));
            data::write_token_shard(shard_path, ids, uint64_t(config.vocab_size));
        }
        const data::TokenShard shard(shard_path);
        train::TrainOptions o;
        o.steps = steps + 1;  // the first step warms up (buffers, threads) and is not timed
        o.batch = batch / N;
        o.seq_len = seq;
        o.log_every = 1;
        o.warmup_steps = 1;
        o.step.precision = default_precision();
        o.out_dir = "/tmp/bitgrad-dp-bench-out-" + std::to_string(::getpid());
        train::Trainer<float, nn::FbiLlama<float>> trainer(model, nullptr, shard, o);
        trainer.data_parallel = dp;
        std::chrono::steady_clock::time_point t0;
        double seconds = 0, sum_at_t0 = 0, sum_in_steps = 0;
        trainer.on_log = [&](const train::StepLog& l) {  // timed from the end of step 1 to the last (no save)
            MPI_Barrier(MPI_COMM_WORLD);
            if (l.step == 1) {
                t0 = std::chrono::steady_clock::now();
                sum_at_t0 = sum_seconds;
            } else if (l.step == o.steps) {
                seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                sum_in_steps = sum_seconds - sum_at_t0;
            }
        };
        // Every rank gets on_log here (for the barriers); only the timing differs from the CLI.
        trainer.run();
        const double tokens = double(steps * batch * seq);
        if (mpi.rank() == 0)
            std::printf(
                "{\"bench\":\"dp_step\",\"preset\":\"%s\",\"ranks\":%d,\"threads\":%d,\"precision\":\"%s\","
                "\"global_batch\":%lld,\"seq\":%lld,\"steps\":%lld,\"tokens_per_s\":%.1f,"
                "\"step_s\":%.4f,\"allreduce_s_per_step\":%.6f}\n",
                preset.c_str(), N, num_threads(), precision_name(o.step.precision), (long long)batch, (long long)seq,
                (long long)steps, tokens / seconds, seconds / double(steps), sum_in_steps / double(steps));
        std::remove(shard_path.c_str());
        if (mpi.rank() == 0) std::filesystem::remove_all(o.out_dir);
    } catch (const std::exception& e) { mpi.abort(e.what()); }
    return 0;
}
