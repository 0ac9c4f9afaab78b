// Data-parallel training over MPI (train/data_parallel.hpp, dist/mpi.hpp). Run by ctest as
// `mpirun -np 2 bitgrad_mpi_tests` (label mpi): every rank runs the same test cases in the same
// order, so their collectives line up.
//   bitgrad_mpi_tests --fail-rank R   a rank whose teacher throws at step 2: the job must end with
//                                     its message (MPI_Abort), not hang in the other rank's allreduce
#define DOCTEST_CONFIG_IMPLEMENT
#include <mpi.h>

#include <bitgrad/dist/mpi.hpp>
#include <cstring>

#include "helpers.hpp"

using namespace bitgrad;

namespace {

int world_rank() {
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}
int world_size() {
    int n = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

// A directory every rank uses: rank 0 creates it and sends its name.
std::filesystem::path shared_dir(const std::string& name) {
    std::string path;
    if (world_rank() == 0) {
        path = (std::filesystem::temp_directory_path() / ("bitgrad-mpi-" + name + "-" + std::to_string(::getpid())))
                   .string();
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    int n = int(path.size());
    MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
    path.resize(std::size_t(n));
    MPI_Bcast(path.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD);
    return path;
}

// The same pseudo-random tokens on every rank (vocabulary 64, the tiny preset's).
void write_tokens(const std::filesystem::path& file) {
    std::vector<uint32_t> ids;
    Rng rng(17);
    for (int i = 0; i < 3000; ++i) ids.push_back(uint32_t(rng.uniform_int(64)));
    data::write_token_shard(file, ids, 64);
}

train::TrainOptions small_run(const std::filesystem::path& out, int64_t batch) {
    train::TrainOptions o;
    o.steps = 6;
    o.batch = batch;
    o.seq_len = 8;
    o.grad_accum = 2;
    o.adamw.lr = 1e-2;
    o.warmup_steps = 1;
    o.min_lr = 1e-3;
    o.log_every = 1;
    o.seed = 3;
    o.keep_last = 10;
    o.out_dir = out.string();
    return o;
}

std::vector<double> flat_weights(const nn::Module<double>& m) {
    std::vector<double> w;
    for (const auto& p : m.named_parameters())
        w.insert(w.end(), p.var.value().data(), p.var.value().data() + p.var.numel());
    return w;
}

}  // namespace

TEST_CASE("MPI: N ranks with batch b train as one process with batch N*b up to summation order") {
    const int N = world_size();
    REQUIRE(N >= 2);
    testing::TempDir dir("mpi-equal-" + std::to_string(world_rank()));
    write_tokens(dir / "train.bin");
    const data::TokenShard shard((dir / "train.bin").string());
    const auto config = [] {
        auto c = nn::LlamaConfig::preset("tiny");
        c.binarized = true;
        return c;
    }();

    Rng init(5);
    nn::FbiLlama<double> replica(config, init);
    train::Trainer<double, nn::FbiLlama<double>> parallel(replica, nullptr, shard, small_run(dir / "dp", 2));
    parallel.data_parallel = dist::mpi_data_parallel();
    REQUIRE(parallel.run());

    Rng init_alone(5);
    nn::FbiLlama<double> alone(config, init_alone);
    train::Trainer<double, nn::FbiLlama<double>> single(alone, nullptr, shard, small_run(dir / "one", 2 * N));
    REQUIRE(single.run());

    // Tolerance: the global batch's gradient is summed in another order (per rank, then across
    // ranks), a few ulps of double; six AdamW steps keep it far below 1e-10.
    REQUIRE(parallel.losses().size() == single.losses().size());
    for (std::size_t s = 0; s < single.losses().size(); ++s)
        CHECK(parallel.losses()[s] == doctest::Approx(single.losses()[s]).epsilon(1e-12));
    const auto a = flat_weights(replica), b = flat_weights(alone);
    double max_diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) max_diff = std::max(max_diff, std::abs(a[i] - b[i]));
    CHECK(max_diff < 1e-10);
    // The replicas themselves agree bit for bit (the trainer compared hashes on every step).
    const uint64_t h = train::weights_hash(replica.parameters());
    uint64_t lo = h, hi = h;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    CHECK(lo == hi);
}

TEST_CASE("MPI: a stop on one rank stops every rank at one step and resume continues bit for bit") {
    const std::filesystem::path straight = shared_dir("straight"), stopped = shared_dir("stopped");
    testing::TempDir local("mpi-resume-" + std::to_string(world_rank()));
    write_tokens(local / "train.bin");
    const data::TokenShard shard((local / "train.bin").string());
    const auto config = nn::LlamaConfig::preset("tiny");
    using Trainer = train::Trainer<double, nn::DenseLlama<double>>;

    Rng init_a(7);
    nn::DenseLlama<double> a(config, init_a);
    Trainer ta(a, nullptr, shard, small_run(straight, 2));
    ta.data_parallel = dist::mpi_data_parallel();
    REQUIRE(ta.run());

    Rng init_b(7);
    nn::DenseLlama<double> b(config, init_b);
    Trainer tb(b, nullptr, shard, small_run(stopped, 2));
    tb.data_parallel = dist::mpi_data_parallel();
    if (world_rank() == 0)  // only rank 0 is asked to stop (as by a signal), while it logs step 3
        tb.on_log = [](const train::StepLog& l) {
            if (l.step == 3) train::stop_requested() = true;
        };
    CHECK_FALSE(tb.run());
    train::stop_requested() = false;
    // The request joins the next step's sum of the losses: every rank finishes step 4 and stops.
    CHECK(tb.step() == 4);
    MPI_Barrier(MPI_COMM_WORLD);  // rank 0's checkpoint is complete

    const auto last = io::latest_checkpoint(stopped / "checkpoints");
    REQUIRE(last);
    CHECK(last->filename() == "step-00000004");
    Rng init_c(99);  // other initial weights: everything must come from the checkpoint
    nn::DenseLlama<double> c(config, init_c);
    Trainer tc(c, nullptr, shard, small_run(stopped, 2));
    tc.data_parallel = dist::mpi_data_parallel();
    tc.resume(*last);
    REQUIRE(tc.run());
    CHECK(flat_weights(c) == flat_weights(a));
    CHECK(tc.losses() == ta.losses());

    // The same checkpoint in a world of one: refused, naming both sizes.
    Rng init_d(7);
    nn::DenseLlama<double> d(config, init_d);
    Trainer td(d, nullptr, shard, small_run(stopped, 2));
    const std::string expected = "saved by " + std::to_string(world_size()) + " data-parallel processes, now running 1";
    CHECK_THROWS_WITH_AS(td.resume(*last), doctest::Contains(expected.c_str()), Error);

    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank() == 0) {
        std::filesystem::remove_all(straight);
        std::filesystem::remove_all(stopped);
    }
}

TEST_CASE("MPI: replicas whose weights differ stop with an error on every rank") {
    testing::TempDir dir("mpi-diverge-" + std::to_string(world_rank()));
    write_tokens(dir / "train.bin");
    const data::TokenShard shard((dir / "train.bin").string());
    Rng init(5);
    nn::DenseLlama<double> m(nn::LlamaConfig::preset("tiny"), init);
    if (world_rank() == 1) m.model.norm.weight.value()[0] += 1e-9;  // one replica drifts
    train::Trainer<double, nn::DenseLlama<double>> t(m, nullptr, shard, small_run(dir / "out", 2));
    t.data_parallel = dist::mpi_data_parallel();
    CHECK_THROWS_WITH_AS(
        t.run(), doctest::Contains("data-parallel replicas diverged: the hash of the weights after step 1"), Error);
}

TEST_CASE("MPI: gradients are summed in buckets and in place whatever their sizes") {
    const auto dp = dist::mpi_data_parallel();
    const int r = dp.rank, N = dp.world_size;
    // Parameters of 3, 1000 and 5 elements; buckets of 16 bytes (4 floats): direct, packed, mixed.
    std::vector<Var<float>> params;
    for (int64_t n : {3, 1000, 5, 1}) {
        Var<float> p(Tensor<float>::zeros({n}), true);
        p.grad() = Tensor<float>::zeros({n});
        for (int64_t i = 0; i < n; ++i) p.grad()[i] = float(r + 1) * float(i + 1);
        params.push_back(p);
    }
    params.push_back(Var<float>(Tensor<float>::zeros({2}), true));  // no gradient on any rank
    train::average_gradients(params, dp, /*bucket_bytes=*/16);
    const float rank_sum = float(N * (N + 1) / 2);  // sum over ranks of (r + 1)
    for (std::size_t k = 0; k + 1 < params.size(); ++k)
        for (int64_t i = 0; i < params[k].numel(); ++i) REQUIRE(params[k].grad()[i] == rank_sum * float(i + 1));
    REQUIRE(params.back().grad().defined());
    CHECK(params.back().grad()[0] == 0.f);
}

int main(int argc, char** argv) {
    dist::MpiSession mpi(argc, argv);
    if (argc == 3 && std::strcmp(argv[1], "--fail-rank") == 0) {
        const int failing = std::atoi(argv[2]);
        try {
            testing::TempDir dir("mpi-fail-" + std::to_string(mpi.rank()));
            write_tokens(dir / "train.bin");
            const data::TokenShard shard((dir / "train.bin").string());
            Rng init(5), teacher_init(6);
            const auto config = nn::LlamaConfig::preset("tiny");
            nn::FbiLlama<float> student(
                [&] {
                    auto c = config;
                    c.binarized = true;
                    return c;
                }(),
                init);
            nn::DenseLlama<float> teacher_model(config, teacher_init);
            int64_t calls = 0;
            train::Teacher<float> base = train::llama_teacher<float>(teacher_model);
            train::Teacher<float> teacher = [&](const Tensor<int32_t>& ids) {
                if (mpi.rank() == failing && ++calls == 3) BITGRAD_CHECK(false, "the teacher failed on purpose");
                return base(ids);
            };
            auto opt = small_run(dir / "out", 2);
            opt.step.loss = train::Loss::AD;
            opt.steps = 100;
            train::Trainer<float, nn::FbiLlama<float>> t(student, teacher, shard, opt);
            t.data_parallel = dist::mpi_data_parallel();
            t.run();
        } catch (const std::exception& e) { mpi.abort(e.what()); }
        std::fprintf(stderr, "rank %d: finished without the failure\n", mpi.rank());
        return 1;
    }
    doctest::Context context(argc, argv);
    const int failures = context.run();
    int worst = failures;
    MPI_Allreduce(&failures, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst ? 1 : 0;
}
