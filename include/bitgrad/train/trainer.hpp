#pragma once
// The training loop: plain CE training, or autoregressive distillation from a teacher.
//
// Each optimizer step: grad_accum micro-batches, each a train::distill_step (sample [B, T+1]
// windows; the teacher's logits, the student's forward, the fused lm_head + loss, backward;
// gradients accumulate in the parameters); then the global gradient norm, and if loss and norm are
// finite, an AdamW step with the scheduled learning rate and the clip factor. A non-finite step is
// skipped and counted; max_nonfinite skips in a row stop training with an error. The losses are
// those of train/distill.hpp (CE, AD, Mixed).
//
// Everything that decides the next step is in the checkpoint (weights, AdamW moments and step,
// sampler RNG state, step), so resuming reproduces an uninterrupted run bit for bit at the same
// thread count. The trainer never prints: it reports through the on_log callback.
//
// Data parallel (Trainer::data_parallel, train/data_parallel.hpp): each replica trains on its slice
// of the global batch, the gradients and the loss are summed across replicas before the step, a
// stop request anywhere stops every replica at the same step, and the replicas compare a hash of
// their weights on every log step. Replica 0 alone writes checkpoints; give the others no on_log.
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bitgrad/core/json.hpp"
#include "bitgrad/data/token_shard.hpp"
#include "bitgrad/io/checkpoint.hpp"
#include "bitgrad/nn/llama.hpp"
#include "bitgrad/optim/adamw.hpp"
#include "bitgrad/optim/schedule.hpp"
#include "bitgrad/train/data_parallel.hpp"
#include "bitgrad/train/distill.hpp"
#include "bitgrad/train/flip_rate.hpp"

namespace bitgrad::train {

struct TrainOptions {
    int64_t steps = 1000;
    int64_t batch = 8, seq_len = 128, grad_accum = 1;
    optim::AdamWOptions adamw;
    bool decay_norms_and_scales = true;  // false: no weight decay on norms and alpha/beta
    double min_lr = 3e-5;
    int64_t warmup_steps = 100;
    double clip_norm = 1.0;
    // What each micro-step runs (train/distill.hpp): loss, AD temperature, precision of the matrix
    // products (default_precision() picks bf16 where native). Its loss_scale is the trainer's to set
    // (1 / (grad_accum x replicas): the micro-batches' gradients then average).
    StepOptions step;
    int64_t log_every = 10, save_every = 0;  // 0: save only at the end
    int64_t eval_every = 0;  // steps between calls of Trainer::validate (0: none); also after the last step
    int keep_last = 2;
    int max_nonfinite = 5;
    uint64_t seed = 1234;
    std::string out_dir;  // checkpoints go to <out_dir>/checkpoints
};

struct StepLog {
    int64_t step = 0;
    double loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0, eta_s = 0;
    int64_t skipped_total = 0;
    bool skipped = false;
    bool has_flips = false;
    FlipRates flips;            // fractions of binarized weights whose sign changed ...
    int64_t flip_steps = 0;     // ... over the last flip_steps optimizer steps
    bool has_val_loss = false;  // set on the steps Trainer::validate ran (every eval_every and the last)
    double val_loss = 0;
};

// What Trainer::resume accepts beyond an exact continuation.
struct ResumePolicy {
    bool allow_thread_change = false;    // another thread count: no longer bit for bit
    bool allow_schedule_change = false;  // other steps, warm-up, learning rates, weight decay, clip, temperature
};

// Stops training at the next step boundary (after a checkpoint is written), e.g. from SIGINT.
inline std::atomic<bool>& stop_requested() {
    static std::atomic<bool> flag{false};
    return flag;
}

template <class T, class Student>
class Trainer {
public:
    // teacher: empty for Loss::CE; train::llama_teacher(model) for a bitgrad teacher.
    Trainer(Student& student, Teacher<T> teacher, const data::TokenShard& shard, TrainOptions opt)
        : student_(student),
          teacher_(std::move(teacher)),
          opt_(checked(student, opt)),
          optimizer_(
              optim::param_groups(student.named_parameters(), opt.adamw.weight_decay, opt.decay_norms_and_scales),
              opt.adamw),
          sampler_(shard, opt.batch, opt.seq_len + 1, opt.seed),
          flips_(student) {
        BITGRAD_CHECK(opt.step.loss == Loss::CE || teacher_,
                      "Trainer: loss " << loss_name(opt.step.loss) << " needs a teacher");
        schedule_ = {opt.adamw.lr, opt.min_lr, opt.warmup_steps, opt.steps};
    }

    std::function<void(const StepLog&)> on_log;
    std::function<void(const std::string&)> on_event;  // checkpoint saved, warnings
    // The validation loss (mean negative log-likelihood per token of held-out text), computed every
    // opt.eval_every steps and after the last one, reported in StepLog::val_loss. A callback, so the
    // trainer needs no evaluation code: e.g.
    //   [&](const auto& m) { return eval::perplexity(infer::FloatLlama(m), val, T).nll; }.
    // Its time is not counted in tokens_per_s.
    std::function<double(const Student&)> validate;
    // Which replica this is and the collectives (default: one process). Set before resume() and run().
    DataParallel data_parallel;
    const std::vector<double>& losses() const { return losses_; }
    int64_t step() const { return step_; }

    // Restores everything from a checkpoint directory written by this trainer. Refuses a checkpoint
    // made with another loss, precision, batch shape, accumulation or number of replicas (the run
    // would not continue the same way), naming what differs. Two changes are refused unless the
    // policy allows them: another thread count (the run continues, but no longer bit for bit as an
    // uninterrupted one) and another schedule or optimizer setting (steps, warm-up, learning rates,
    // weight decay, clipping, temperature: the learning rate jumps). Returns one line per accepted
    // change, with the learning rate of the next step before and after, for the log.
    std::vector<std::string> resume(const std::filesystem::path& dir, const ResumePolicy& policy = {}) {
        const std::string where = (dir / "trainer_state.json").string();
        const auto state = load_json(dir / "trainer_state.json");
        auto field = [&](const char* key, auto example) { return json_field<decltype(example)>(state, key, where); };
        std::vector<std::string> changes;
        const int threads = field("threads", int());
        if (threads != num_threads()) {
            BITGRAD_CHECK(policy.allow_thread_change,
                          where << ": saved with " << threads << " threads, now running with " << num_threads()
                                << "; results would differ in the last bits. Resume with " << threads
                                << " threads (--threads " << threads << " or OMP_NUM_THREADS=" << threads
                                << "), or accept an inexact resume (--allow-inexact-resume)");
            changes.push_back("threads " + std::to_string(threads) + " -> " + std::to_string(num_threads()) +
                              ": the run continues, but not bit for bit as an uninterrupted run would");
        }
        const std::string loss = field("loss", std::string());
        BITGRAD_CHECK(loss == loss_name(opt_.step.loss),
                      where << ": saved with loss " << loss << ", now " << loss_name(opt_.step.loss));
        const std::string precision = json_field_or<std::string>(state, "precision", "fp32", where);
        BITGRAD_CHECK(precision == precision_name(opt_.step.precision),
                      where << ": saved with --precision " << precision << ", now "
                            << precision_name(opt_.step.precision)
                            << "; resume with the same precision (the run would not continue the same way)");
        const int world = json_field_or<int>(state, "world_size", 1, where);
        BITGRAD_CHECK(world == data_parallel.world_size,
                      where << ": saved by " << world << " data-parallel processes, now running "
                            << data_parallel.world_size << "; resume with the same number (mpirun -np " << world
                            << "): each replica's share of the batch would change");
        const int64_t batch = field("batch", int64_t()), seq_len = field("seq_len", int64_t()),
                      accum = field("grad_accum", int64_t());
        BITGRAD_CHECK(batch == opt_.batch && seq_len == opt_.seq_len && accum == opt_.grad_accum,
                      where << ": saved with batch " << batch << " x seq_len " << seq_len << " x grad_accum " << accum
                            << ", now " << opt_.batch << " x " << opt_.seq_len << " x " << opt_.grad_accum
                            << "; resume with the same --batch, --seq and --accum");
        const int64_t step = field("step", int64_t()), optimizer_step = field("optimizer_step", int64_t());
        const auto sampler_state = field("sampler_rng", Rng::State());
        auto losses = field("losses", std::vector<double>());
        const int64_t skipped = field("skipped_steps", int64_t());
        BITGRAD_CHECK(step >= 0 && optimizer_step >= 0 && optimizer_step <= step && int64_t(losses.size()) == step,
                      where << ": inconsistent state: step " << step << ", optimizer_step " << optimizer_step << ", "
                            << losses.size() << " losses");
        if (const std::string diff = schedule_changes(state, where); !diff.empty()) {
            const auto saved = saved_schedule(state, where);
            char lr[160];
            if (saved(step + 1) == schedule_(step + 1))
                std::snprintf(lr, sizeof lr, "the learning rate of step %lld stays %.3g", (long long)(step + 1),
                              saved(step + 1));
            else
                std::snprintf(lr, sizeof lr, "the learning rate of step %lld changes from %.3g to %.3g",
                              (long long)(step + 1), saved(step + 1), schedule_(step + 1));
            BITGRAD_CHECK(policy.allow_schedule_change,
                          where << ": saved with " << diff << "; " << lr
                                << ". Resume with the saved values, or allow the change (--change-schedule)");
            changes.push_back(diff + "; " + lr);
        }
        io::load_model_weights(dir, student_);
        io::load_optimizer_state(dir, optimizer_);
        step_ = step;
        optimizer_.set_step_count(optimizer_step);
        sampler_.set_state(sampler_state);
        losses_ = std::move(losses);
        skipped_total_ = skipped;
        flips_ = FlipTracker<T>(student_);
        last_flip_step_ = step_;
        last_saved_ = {step_, dir};
        check_replicas_agree();
        return changes;
    }

    // Writes a checkpoint of the current step (unless this step is already saved: a resumed run
    // that takes no step, or a stop right after a --save-every save).
    // With data parallelism only replica 0 writes; the others return the directory it writes.
    std::filesystem::path save() {
        if (last_saved_.first == step_ && !last_saved_.second.empty()) return last_saved_.second;
        if (data_parallel.rank != 0) {
            last_saved_ = {step_,
                           std::filesystem::path(opt_.out_dir) / "checkpoints" / io::detail::step_dir_name(step_)};
            return last_saved_.second;
        }
        nlohmann::json state = {{"step", step_},
                                {"optimizer_step", optimizer_.step_count()},
                                {"seed", opt_.seed},
                                {"threads", num_threads()},
                                {"world_size", data_parallel.world_size},
                                {"loss", loss_name(opt_.step.loss)},
                                {"precision", precision_name(opt_.step.precision)},
                                {"batch", opt_.batch},
                                {"seq_len", opt_.seq_len},
                                {"grad_accum", opt_.grad_accum},
                                {"schedule", schedule_json()},
                                {"sampler_rng", sampler_.state()},
                                {"skipped_steps", skipped_total_},
                                {"losses", losses_}};
        auto dir = io::save_checkpoint(std::filesystem::path(opt_.out_dir) / "checkpoints", step_, student_,
                                       student_.config, optimizer_, state, opt_.keep_last);
        last_saved_ = {step_, dir};
        if (on_event) on_event("saved checkpoint " + dir.string());
        return dir;
    }

    // Trains until opt.steps (or a stop request). Returns true if it finished all steps.
    bool run() {
        const auto start = std::chrono::steady_clock::now();
        auto last_log = start;
        const int64_t first = step_;
        int consecutive_nonfinite = 0;
        int64_t tokens_since_log = 0;
        const auto params = student_.parameters();
        while (step_ < opt_.steps) {
            ++step_;
            student_.clear_grad();  // (already clear, unless a previous run() stopped half-way)
            double loss_sum = 0;
            for (int64_t micro = 0; micro < opt_.grad_accum; ++micro)
                loss_sum += micro_step() / double(opt_.grad_accum);
            tokens_since_log += opt_.batch * opt_.seq_len * opt_.grad_accum * data_parallel.world_size;
            bool stop = stop_requested();
            if (data_parallel.distributed()) {  // the global batch's gradient and loss; one stop for all
                average_gradients(params, data_parallel);
                double shared[2] = {loss_sum, stop ? 1.0 : 0.0};
                data_parallel.sum_doubles(shared, 2);
                loss_sum = shared[0] / double(data_parallel.world_size);
                stop = shared[1] > 0;
                if (stop) stop_requested() = true;
            }
            const double gnorm = optim::grad_norm(params);
            const double lr = schedule_(step_);
            const bool finite = std::isfinite(loss_sum) && std::isfinite(gnorm);
            if (finite) {
                optimizer_.step(lr, optim::clip_factor(gnorm, opt_.clip_norm));
                consecutive_nonfinite = 0;
            } else {
                ++skipped_total_;
                ++consecutive_nonfinite;
                BITGRAD_CHECK(consecutive_nonfinite < opt_.max_nonfinite,
                              "training stopped at step "
                                  << step_ << ": " << consecutive_nonfinite
                                  << " optimizer steps in a row had a non-finite loss or gradient (loss " << loss_sum
                                  << ", grad norm " << gnorm << "). Lower the learning rate or check the data");
            }
            // The gradients go back to the system until the next backward: the next forward's
            // activations then need no memory on top of them (the step's peak drops by their size).
            student_.clear_grad();
            losses_.push_back(loss_sum);
            const bool last = step_ == opt_.steps || stop;
            const bool validate_now = validate && opt_.eval_every > 0 && (step_ % opt_.eval_every == 0 || last);
            if (on_log && (step_ % opt_.log_every == 0 || last || !finite || validate_now)) {
                const auto now = std::chrono::steady_clock::now();
                StepLog log;
                log.step = step_;
                log.loss = loss_sum;
                log.lr = lr;
                log.grad_norm = gnorm;
                log.tokens_per_s = double(tokens_since_log) / std::chrono::duration<double>(now - last_log).count();
                const double per_step = std::chrono::duration<double>(now - start).count() / double(step_ - first);
                log.eta_s = per_step * double(opt_.steps - step_);
                log.skipped = !finite;
                log.skipped_total = skipped_total_;
                // Flips are measured on log steps only, so every measurement spans log_every steps
                // (the last one possibly fewer): a validation step between them does not shorten one.
                if (!flips_.empty() && (step_ % opt_.log_every == 0 || last || !finite)) {
                    log.has_flips = true;
                    log.flips = flips_.update();
                    log.flip_steps = step_ - last_flip_step_;
                    last_flip_step_ = step_;
                }
                if (validate_now) {
                    log.has_val_loss = true;
                    log.val_loss = validate(student_);
                }
                on_log(log);
                last_log = std::chrono::steady_clock::now();
                tokens_since_log = 0;
            }
            if (step_ % opt_.log_every == 0 || last) check_replicas_agree();
            if (opt_.save_every > 0 && step_ % opt_.save_every == 0 && step_ < opt_.steps) save();
            // One process honours a request made while this step logged; replicas agree on it in the
            // next step's sum, so that every one stops after the same step.
            if (stop || (!data_parallel.distributed() && stop_requested())) {
                save();
                return false;
            }
        }
        save();
        return true;
    }

private:
    // Checks the options and refuses a run that cannot fit in memory, before the optimizer state
    // and the first batch are allocated: gradients and two AdamW moments per parameter, and the
    // activations of one micro-batch (nn::LlamaConfig::activation_floats_per_token).
    static TrainOptions checked(const Student& student, const TrainOptions& opt) {
        BITGRAD_CHECK(opt.steps > 0 && opt.grad_accum > 0 && opt.batch > 0 && opt.seq_len > 0 && opt.log_every > 0,
                      "Trainer: steps " << opt.steps << ", batch " << opt.batch << ", seq_len " << opt.seq_len
                                        << ", grad_accum " << opt.grad_accum << " and log_every " << opt.log_every
                                        << " must be > 0");
        BITGRAD_CHECK(opt.eval_every >= 0,
                      "Trainer: eval_every " << opt.eval_every << " must be >= 0 (0: no validation)");
        const std::string what = "Trainer: memory estimate";
        const int64_t tokens = checked_mul(opt.batch, opt.seq_len, what);
        int64_t floats = checked_mul(3, student.config.num_parameters(), what);
        floats = checked_add(floats, checked_mul(tokens, student.config.activation_floats_per_token(), what), what);
        require_memory(uint64_t(checked_mul(floats, int64_t(sizeof(T)), what)),
                       "training with batch " + std::to_string(opt.batch) + " x seq_len " +
                           std::to_string(opt.seq_len) + " (gradients, AdamW moments and activations)");
        return opt;
    }

    // The settings that shape the remaining steps' updates, as trainer_state.json records them.
    nlohmann::json schedule_json() const {
        return {{"steps", opt_.steps},
                {"warmup_steps", opt_.warmup_steps},
                {"lr", opt_.adamw.lr},
                {"min_lr", opt_.min_lr},
                {"weight_decay", opt_.adamw.weight_decay},
                {"clip_norm", opt_.clip_norm},
                {"temperature", opt_.step.temperature}};
    }
    // "steps 30, now 60; warmup_steps 30, now 5" for the settings that differ from the checkpoint's
    // (empty: none, or a checkpoint written before the schedule was recorded).
    std::string schedule_changes(const nlohmann::json& state, const std::string& where) const {
        if (!state.contains("schedule")) return "";
        const auto& saved = state["schedule"];
        BITGRAD_CHECK(saved.is_object(), where << ": field \"schedule\" must be an object");
        std::string diff;
        const nlohmann::json current = schedule_json();
        for (const auto& [key, value] : current.items()) {
            const double was = json_field<double>(saved, key.c_str(), where + " (schedule)");
            const double now = value.template get<double>();
            if (was == now) continue;
            char line[96];
            std::snprintf(line, sizeof line, "%s %.6g, now %.6g", key.c_str(), was, now);
            diff += (diff.empty() ? "" : "; ") + std::string(line);
        }
        return diff;
    }
    optim::CosineSchedule saved_schedule(const nlohmann::json& state, const std::string& where) const {
        const auto& saved = state["schedule"];
        const std::string w = where + " (schedule)";
        return {json_field<double>(saved, "lr", w), json_field<double>(saved, "min_lr", w),
                json_field<int64_t>(saved, "warmup_steps", w), json_field<int64_t>(saved, "steps", w)};
    }

    // Every replica must hold the same weights: a replica that diverged (other threads, another
    // build, a bit flip) would otherwise train on silently.
    void check_replicas_agree() {
        if (!data_parallel.distributed()) return;
        data_parallel.check_equal(weights_hash(student_.parameters()),
                                  "the hash of the weights after step " + std::to_string(step_));
    }

    double micro_step() {
        const auto& dp = data_parallel;
        auto [inputs, labels] = data::split_inputs_labels(sampler_.next(dp.rank, dp.world_size));
        StepOptions so = opt_.step;
        // Summed over the replicas, these gradients are the mean loss's over the global batch.
        so.loss_scale = 1.0 / double(opt_.grad_accum * dp.world_size);
        return distill_step<T>(student_, teacher_ ? &teacher_ : nullptr, inputs, labels, so);
    }

    Student& student_;
    Teacher<T> teacher_;
    TrainOptions opt_;
    optim::AdamW<T> optimizer_;
    optim::CosineSchedule schedule_;
    data::WindowSampler sampler_;
    FlipTracker<T> flips_;
    std::vector<double> losses_;
    int64_t step_ = 0, skipped_total_ = 0, last_flip_step_ = 0;
    std::pair<int64_t, std::filesystem::path> last_saved_{-1, {}};
};

}  // namespace bitgrad::train
