// Inference of the packed 1-bit model (infer::PackedLlama): prefill and decode tokens/s for the
// FBI-LLM shapes with random weights, next to, in the same run:
//   - two memory-bandwidth probes, so the decode figure can be read as "fraction of what memory
//     allows": a STREAM-like triad over 3 x 128 MiB (GB/s counts bytes read and written; the issue
//     targets are stated against it) and a read-only sum over 256 MiB (what a decode step does: it
//     only reads weights and cache; on a 2-core Zen 2 VM it measured ~0.7 of the triad);
//   - the dense fp32 path of the same shape (infer::DenseFbiDecoder: W_hat in float, the same code
//     and KV cache), where it fits in memory.
// One JSON line per (shape, format, threads): prefill tok/s (pp: a prompt of --prompt tokens on an
// empty cache), decode tok/s (tg: --gen tokens one at a time after it), the bytes a decode step
// reads (weights + KV cache at the mean context), achieved GB/s, its fraction of the probe, the
// process's resident memory with that model loaded (rss_mib) and its peak so far (peak_rss_mib), and
// whether the line is the library's default packed model (library_default: the tables `bitgrad
// pack` writes and the activations `generate` uses unless told otherwise).
// The packed model is built once per --tables entry (embedding and lm_head in bf16, or int8 with a
// scale per row: infer/token_table.hpp) and runs once per --activations entry: float (the default
// of the library) and int8 (kernels/sign_matmul_q8.hpp: rounded per token, integer sign products).
//   usage: decode_bench [--presets 130M,1.3B,7B] [--threads 1,2] [--prompt 128] [--gen 64] [--dense auto|no]
//                       [--activations float,int8] [--tables bf16,int8]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.hpp"

using namespace bitgrad;

namespace {

// a[i] = b[i] + s * c[i] over 128 MiB arrays: 3 x 128 MiB moved per pass (2 read, 1 written).
double bandwidth_gbps() {
    const int64_t n = int64_t(32) << 20;
    std::vector<float> a(std::size_t(n), 0.f), b(std::size_t(n), 1.f), c(std::size_t(n), 2.f);
    const double s = bench::best_seconds(
        [&] {
            float* pa = a.data();
            const float *pb = b.data(), *pc = c.data();
            parallel_chunks(n, [&](int64_t lo, int64_t hi) {
                for (int64_t i = lo; i < hi; ++i) pa[i] = pb[i] + 0.5f * pc[i];
            });
        },
        5);
    return 3.0 * double(n) * 4.0 / s * 1e-9;
}

// sum of x[i] over a 256 MiB array, each thread its static share: GB/s of reads alone.
double read_bandwidth_gbps() {
    const int64_t n = int64_t(64) << 20;
    std::vector<float> x(std::size_t(n), 1.f);
    std::vector<float> partial(std::size_t(num_threads()) * 16, 0.f);  // a cache line per thread
    const double s = bench::best_seconds(
        [&] {
            const float* px = x.data();
            parallel_chunks(n, [&](int64_t lo, int64_t hi) {
                float acc[16] = {};
                for (int64_t i = lo; i + 16 <= hi; i += 16)
                    for (int l = 0; l < 16; ++l) acc[l] += px[i + l];  // 16 lanes: vectorizes without -ffast-math
                float t = 0.f;
                for (float a : acc) t += a;
                partial[std::size_t(thread_index()) * 16] += t;
            });
        },
        5);
    volatile float sink = partial[0];
    (void)sink;
    return double(n) * 4.0 / s * 1e-9;
}

struct Probes {
    double triad_gbps, read_gbps;
};

template <class Decoder>
void run(const Decoder& model, const char* preset, const char* format, int threads, int64_t prompt, int64_t gen,
         const Probes& probe, bool library_default) {
    const auto& c = model.config();
    Rng rng(3);
    std::vector<int32_t> ids(std::size_t(prompt + gen));
    for (auto& v : ids) v = int32_t(rng.uniform_int(uint64_t(c.vocab_size)));
    std::vector<float> logits(std::size_t(c.vocab_size));
    infer::KvCache cache = model.new_cache(prompt + gen);
    double prefill = 1e30, decode = 1e30;
    for (int rep = 0; rep < 3; ++rep) {  // best of 3 (the first also warms the buffers)
        cache.clear();
        auto t0 = std::chrono::steady_clock::now();
        model.forward(ids.data(), prompt, cache, logits.data());
        auto t1 = std::chrono::steady_clock::now();
        for (int64_t i = 0; i < gen; ++i) model.forward(&ids[std::size_t(prompt + i)], 1, cache, logits.data());
        auto t2 = std::chrono::steady_clock::now();
        prefill = std::min(prefill, std::chrono::duration<double>(t1 - t0).count());
        decode = std::min(decode, std::chrono::duration<double>(t2 - t1).count());
    }
    const double bytes = double(model.bytes_per_token(prompt + gen / 2));
    const double decode_tps = double(gen) / decode, gbps = bytes * decode_tps * 1e-9;
    const bool int8 = kernels::sign_activations() == kernels::SignActivations::Int8;
    std::printf(
        "{\"bench\":\"decode\",\"preset\":\"%s\",\"format\":\"%s\",\"activations\":\"%s\",\"sign_kernel\":\"%s\","
        "\"kv_cache\":\"%s\",\"threads\":%d,"
        "\"prompt\":%ld,\"gen\":%ld,\"prefill_tokens_per_s\":%.1f,\"decode_tokens_per_s\":%.1f,"
        "\"weight_mib\":%.1f,\"bytes_per_token_mib\":%.2f,\"achieved_gbps\":%.2f,\"bandwidth_probe_gbps\":%.2f,"
        "\"fraction_of_bandwidth\":%.3f,\"read_probe_gbps\":%.2f,\"fraction_of_read_bandwidth\":%.3f,\"rss_mib\":%.0f,"
        "\"peak_rss_mib\":%.0f,\"library_default\":%s}\n",
        preset, format, kernels::sign_activations_name(kernels::sign_activations()),
        int8 ? kernels::variant_of(kernels::kSignQ8Variants, kernels::sign_q8_kernel()).name
             : kernels::sign_kernel_name(kernels::sign_kernel()),
        infer::kv_format_name(cache.format), threads, long(prompt), long(gen), double(prompt) / prefill, decode_tps,
        double(model.bytes()) / 1048576.0, bytes / 1048576.0, gbps, probe.triad_gbps, gbps / probe.triad_gbps,
        probe.read_gbps, gbps / probe.read_gbps, bench::rss_mib(), bench::peak_rss_mib(),
        library_default ? "true" : "false");
    std::fflush(stdout);
}
}  // namespace

int main(int argc, char** argv) {
    std::string presets = "130M,1.3B,7B", threads_list = "1,2", dense_mode = "auto", activations_list = "float,int8",
                tables_list = "bf16,int8";
    int64_t prompt = 128, gen = 64;
    const kernels::SignActivations default_activations = kernels::sign_activations();  // no scope yet
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "decode_bench: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--presets")
            presets = next();
        else if (a == "--threads")
            threads_list = next();
        else if (a == "--prompt")
            prompt = std::stoll(next());
        else if (a == "--gen")
            gen = std::stoll(next());
        else if (a == "--dense")
            dense_mode = next();
        else if (a == "--activations")
            activations_list = next();
        else if (a == "--tables")
            tables_list = next();
        else {
            std::fprintf(stderr, "decode_bench: unknown option %s\n", a.c_str());
            return 2;
        }
    }
    for (const std::string& preset : bench::split_list(presets)) {
        nn::LlamaConfig config = nn::LlamaConfig::preset(preset);
        config.max_position_embeddings = std::max(config.max_position_embeddings, prompt + gen);
        for (const std::string& tables : bench::split_list(tables_list)) {
            const infer::TableFormat format = infer::parse_table_format(tables, "--tables");
            std::unique_ptr<infer::PackedLlama> packed;
            {
                Rng rng(1);
                packed = std::make_unique<infer::PackedLlama>(config, rng, format);
            }
            trim_buffer_cache();
            const std::string name = "packed-1bit-" + tables + "-tables";
            for (const std::string& th : bench::split_list(threads_list)) {
                set_num_threads(std::stoi(th));
                const Probes probe{bandwidth_gbps(), read_bandwidth_gbps()};
                for (const std::string& act : bench::split_list(activations_list)) {
                    if (act != "float" && act != "int8") {
                        std::fprintf(stderr, "decode_bench: --activations takes float and/or int8, not %s\n",
                                     act.c_str());
                        return 2;
                    }
                    kernels::SignActivationsScope scope(act == "int8" ? kernels::SignActivations::Int8
                                                                      : kernels::SignActivations::Float);
                    run(*packed, preset.c_str(), name.c_str(), std::stoi(th), prompt, gen, probe,
                        format == infer::PackedFbiLinear::default_tables &&
                            kernels::sign_activations() == default_activations);
                }
            }
            packed.reset();
            trim_buffer_cache();
        }
        // The dense fp32 baseline, where its float W_hat fits in half the available memory.
        const double dense_bytes = 4.0 * double(config.num_parameters());
        if (dense_mode == "no" || dense_bytes > 0.5 * double(available_memory_bytes())) {
            std::printf(
                "{\"bench\":\"decode\",\"preset\":\"%s\",\"format\":\"dense-fp32\",\"skipped\":\"needs %.1f GiB\"}\n",
                preset.c_str(), dense_bytes / 1073741824.0);
            continue;
        }
        std::unique_ptr<infer::DenseFbiDecoder> dense;
        {
            Rng rng(1);
            dense = std::make_unique<infer::DenseFbiDecoder>(config, rng);
        }
        for (const std::string& th : bench::split_list(threads_list)) {
            set_num_threads(std::stoi(th));
            const Probes probe{bandwidth_gbps(), read_bandwidth_gbps()};
            run(*dense, preset.c_str(), "dense-fp32", std::stoi(th), prompt, gen, probe, false);
        }
        dense.reset();
        trim_buffer_cache();
    }
    return 0;
}
