#pragma once
// bitgrad over MPI: train::DataParallel's collectives as MPI calls, and the process's MPI session.
// Not part of <bitgrad/bitgrad.hpp> (the header-only core never needs MPI): include it in a program
// built against MPI (CMake: find_package(MPI), target MPI::MPI_CXX; bitgrad's CLI with BITGRAD_MPI).
//
//   std::optional<dist::MpiSession> mpi;                // MPI_Init_thread ... MPI_Finalize,
//   if (dist::launched_by_mpi()) mpi.emplace(argc, argv);  // only under mpirun
//   trainer.data_parallel = dist::mpi_data_parallel();  // rank, size and collectives of MPI_COMM_WORLD
//   ...
//   catch (const std::exception& e) { mpi.abort(e.what()); }  // every rank stops, none hangs
//
// Run with `mpirun -np N program ...` (docs/distributed.md). The collectives are blocking
// MPI_Allreduce calls in place; the gradient sum runs after the backward (train::average_gradients
// buckets small tensors). MPI_Allreduce gives every rank the same bits, so the replicas' AdamW steps
// stay identical; Trainer checks it with a hash of the weights on every log step.
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bitgrad/core/error.hpp"
#include "bitgrad/train/data_parallel.hpp"

namespace bitgrad::dist {

namespace detail {
inline void mpi_check(int code, const char* call) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(code, text, &n);
    BITGRAD_CHECK(false, call << " failed: " << std::string(text, std::size_t(n)));
}

// MPI_Allreduce in place, in chunks of at most 2^30 elements (its count is an int).
inline void allreduce_sum(void* data, int64_t n, MPI_Datatype type, int64_t item, MPI_Comm comm) {
    auto* bytes = static_cast<char*>(data);
    for (int64_t at = 0; at < n;) {
        const int64_t count = std::min<int64_t>(n - at, int64_t(1) << 30);
        mpi_check(MPI_Allreduce(MPI_IN_PLACE, bytes + at * item, int(count), type, MPI_SUM, comm), "MPI_Allreduce");
        at += count;
    }
}
}  // namespace detail

// Whether this process was started by an MPI launcher (mpirun / mpiexec of OpenMPI, MPICH's Hydra,
// a PMI / PMIx-aware scheduler such as Slurm's srun): they all put the process's rank in its
// environment. A program that is not should not call MPI_Init: OpenMPI would make it a singleton
// and fork an `orted` daemon for it, which a killed run leaves behind.
inline bool launched_by_mpi() {
    for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"})
        if (std::getenv(var)) return true;
    return false;
}

// MPI_Init_thread on construction (MPI_THREAD_FUNNELED: OpenMP threads never call MPI), MPI_Finalize
// on destruction. A program started without mpirun is a world of one (a singleton); programs that
// also run alone construct it only when launched_by_mpi().
class MpiSession {
public:
    MpiSession(int& argc, char**& argv) {
        int provided = 0;
        detail::mpi_check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
        MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &size_);
    }
    ~MpiSession() { MPI_Finalize(); }
    MpiSession(const MpiSession&) = delete;
    MpiSession& operator=(const MpiSession&) = delete;

    int rank() const { return rank_; }
    int size() const { return size_; }
    // Prints the error with this rank's number and ends every rank of the job (MPI_Abort): a rank
    // that failed must not leave the others waiting in a collective.
    [[noreturn]] void abort(const std::string& message, int code = 1) const {
        std::fprintf(stderr, "rank %d of %d failed: %s\n", rank_, size_, message.c_str());
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
        std::abort();  // not reached
    }

private:
    int rank_ = 0, size_ = 1;
};

// The DataParallel of `comm`: its rank and size, sums by MPI_Allreduce, and an equality check
// (the min and max of the value over the ranks must agree).
inline train::DataParallel mpi_data_parallel(MPI_Comm comm = MPI_COMM_WORLD) {
    train::DataParallel dp;
    MPI_Comm_rank(comm, &dp.rank);
    MPI_Comm_size(comm, &dp.world_size);
    dp.sum_floats = [comm](float* data, int64_t n) { detail::allreduce_sum(data, n, MPI_FLOAT, 4, comm); };
    dp.sum_doubles = [comm](double* data, int64_t n) { detail::allreduce_sum(data, n, MPI_DOUBLE, 8, comm); };
    dp.check_equal = [comm, rank = dp.rank](uint64_t value, const std::string& what) {
        unsigned long long lo = value, hi = value;
        detail::mpi_check(MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, comm), "MPI_Allreduce");
        detail::mpi_check(MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm), "MPI_Allreduce");
        BITGRAD_CHECK(lo == hi, "data-parallel replicas diverged: " << what << " differs between ranks (rank " << rank
                                                                    << " has " << value
                                                                    << "); same binary and OMP_NUM_THREADS on every "
                                                                       "rank?");
    };
    return dp;
}

}  // namespace bitgrad::dist
