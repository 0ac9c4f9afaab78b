#pragma once
// Zero-shot multiple-choice evaluation as lm-evaluation-harness 0.4.2 runs the tasks of FBI-LLM's
// tables (BoolQ, PIQA, HellaSwag, Winogrande, ARC-Easy, ARC-Challenge, OpenBookQA).
//
// Items, JSONL (one object a line; "id" optional; "target_delimiter" optional, default " "):
//   {"context": str, "choices": [str, ...], "gold": int}       requests (context, delim + choice_i)
//   {"contexts": [str, ...], "continuation": str, "gold": int}  requests (context_i, delim + continuation)
// The strings are lm-eval's doc_to_text, doc_to_choice and doc_to_target; the second form is its
// multiple_inputs (Winogrande's partial scoring: the choices differ in the context). convert_mc_task (mc_tasks.hpp)
// writes them from the official dataset files exactly as lm-eval's task YAMLs and utils do.
//
// Log-likelihood of a request (lm_eval/api/model.py TemplateLM, lm_eval/models/huggingface.py HFLM):
//   trailing whitespace of the context (Python's rstrip) moves to the front of the continuation;
//   context_enc = encode(context), continuation_enc = encode(context + continuation)[len(context_enc):]
//   (an empty context: [prefix token], encode(continuation)); encode adds no BOS (HFLM's
//   add_special_tokens=False for causal models); the model reads the last max_length + 1 tokens of
//   context_enc + continuation_enc minus the very last, and
//   ll = sum over the continuation's tokens of log p(token | the tokens before it).
// Metrics (ConfigurableTask.process_results, metrics.mean_stderr):
//   acc      = mean_items [argmax_i ll_i == gold]
//   acc_norm = mean_items [argmax_i ll_i / len(choice_i) == gold], len in characters (code points) of
//              the choice without the delimiter; ordinary items only (lm-eval's Winogrande and BoolQ
//              YAMLs list acc alone: McTask::acc_norm)
//   stderr   = sample stddev / sqrt(n) = sqrt(p (1 - p) / (n - 1)); argmax takes the first of equals.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bitgrad/core/atomic_file.hpp"
#include "bitgrad/core/error.hpp"
#include "bitgrad/core/json.hpp"
#include "bitgrad/eval/perplexity.hpp"
#include "bitgrad/eval/py_string.hpp"
#include "bitgrad/infer/causal_lm.hpp"
#include "bitgrad/kernels/softmax.hpp"

namespace bitgrad::eval {

// One question. Ordinary: context + choices. Partial scoring: contexts (one per choice) + continuation.
struct MultipleChoiceItem {
    std::string context;
    std::vector<std::string> choices;
    std::vector<std::string> contexts;
    std::string continuation;
    int64_t gold = 0;
    std::string target_delimiter = " ";
    std::string id;      // optional
    std::string source;  // "file:line" it came from (for messages; not written)

    bool partial() const { return !contexts.empty(); }
    int64_t num_choices() const { return int64_t(partial() ? contexts.size() : choices.size()); }
    // lm-eval's loglikelihood requests (context, continuation), one per choice.
    std::vector<std::pair<std::string, std::string>> requests() const {
        std::vector<std::pair<std::string, std::string>> r;
        if (partial())
            for (const auto& c : contexts) r.emplace_back(c, target_delimiter + continuation);
        else
            for (const auto& c : choices) r.emplace_back(context, target_delimiter + c);
        return r;
    }
};

// ---------------------------------------------------------------------------------------------
// The item file.
namespace detail {
// Calls fn(json, "path:line") for every non-blank line of a JSONL file.
template <class Fn>
void for_each_jsonl(const std::string& path, Fn&& fn) {
    std::ifstream f(path, std::ios::binary);
    BITGRAD_CHECK(f, "cannot open " << path);
    std::string line;
    for (int64_t number = 1; std::getline(f, line); ++number) {
        if (py_strip(line).empty()) continue;
        const std::string where = path + ":" + std::to_string(number);
        fn(parse_json(line, where), where);
    }
    BITGRAD_CHECK(f.eof(), "cannot read " << path);
}
inline std::vector<std::string> string_list(const nlohmann::json& j, const char* key, const std::string& where) {
    BITGRAD_CHECK(
        j.contains(key) && j[key].is_array(),
        where << ": field \"" << key << "\" must be an array of strings"
              << (j.contains(key) ? ", got " + bitgrad::detail::json_excerpt(j[key]) : std::string(", missing")));
    std::vector<std::string> out;
    for (std::size_t i = 0; i < j[key].size(); ++i) {
        BITGRAD_CHECK(j[key][i].is_string(), where << ": field \"" << key << "\"[" << i << "] must be a string, got "
                                                   << bitgrad::detail::json_excerpt(j[key][i]));
        out.push_back(j[key][i].get<std::string>());
    }
    return out;
}
// An optional "id": a string or an integer.
inline std::string json_id(const nlohmann::json& j, const char* key, const std::string& where) {
    if (!j.contains(key) || j[key].is_null()) return "";
    if (j[key].is_number_integer()) return j[key].dump();
    return json_field<std::string>(j, key, where);
}
}  // namespace detail

// Checks an item: at least 2 choices, gold in range. `where` names it in messages.
inline void validate_mc_item(const MultipleChoiceItem& it, const std::string& where) {
    BITGRAD_CHECK(it.partial() ? it.choices.empty() && it.context.empty() : it.continuation.empty(),
                  where << ": an item has either \"context\" and \"choices\" or \"contexts\" and \"continuation\"");
    const char* field = it.partial() ? "contexts" : "choices";
    BITGRAD_CHECK(it.num_choices() >= 2,
                  where << ": field \"" << field << "\" has " << it.num_choices() << " entries, expected at least 2");
    BITGRAD_CHECK(it.gold >= 0 && it.gold < it.num_choices(), where << ": field \"gold\" is " << it.gold
                                                                    << ", expected an index in [0, " << it.num_choices()
                                                                    << ") into \"" << field << "\"");
}

inline MultipleChoiceItem mc_item_from_json(const nlohmann::json& j, const std::string& where) {
    BITGRAD_CHECK(j.is_object(), where << ": expected a JSON object, got " << bitgrad::detail::json_excerpt(j));
    MultipleChoiceItem it;
    it.source = where;
    if (j.contains("contexts")) {
        BITGRAD_CHECK(!j.contains("context") && !j.contains("choices"),
                      where << ": \"contexts\" (partial scoring) cannot go with \"context\" or \"choices\"");
        it.contexts = detail::string_list(j, "contexts", where);
        it.continuation = json_field<std::string>(j, "continuation", where);
    } else {
        BITGRAD_CHECK(!j.contains("continuation"),
                      where << ": \"continuation\" goes with \"contexts\" (partial scoring), not \"context\"");
        it.context = json_field<std::string>(j, "context", where);
        it.choices = detail::string_list(j, "choices", where);
    }
    it.gold = json_field<int64_t>(j, "gold", where);
    it.target_delimiter = json_field_or<std::string>(j, "target_delimiter", " ", where);
    it.id = detail::json_id(j, "id", where);
    validate_mc_item(it, where);
    return it;
}

inline nlohmann::ordered_json mc_item_to_json(const MultipleChoiceItem& it) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    if (!it.id.empty()) j["id"] = it.id;
    if (it.partial()) {
        j["contexts"] = it.contexts;
        j["continuation"] = it.continuation;
    } else {
        j["context"] = it.context;
        j["choices"] = it.choices;
    }
    j["gold"] = it.gold;
    if (it.target_delimiter != " ") j["target_delimiter"] = it.target_delimiter;
    return j;
}

inline std::vector<MultipleChoiceItem> read_mc_items(const std::string& path) {
    std::vector<MultipleChoiceItem> items;
    detail::for_each_jsonl(
        path, [&](const nlohmann::json& j, const std::string& where) { items.push_back(mc_item_from_json(j, where)); });
    BITGRAD_CHECK(!items.empty(), path << ": no items");
    return items;
}

inline void write_mc_items(const std::string& path, const std::vector<MultipleChoiceItem>& items) {
    std::string text;
    for (const auto& it : items) {
        validate_mc_item(it, it.source.empty() ? path : it.source);
        try {
            text += mc_item_to_json(it).dump() + "\n";
        } catch (const nlohmann::json::exception& e) {
            BITGRAD_CHECK(false, path << ": item " << (it.id.empty() ? it.source : it.id)
                                      << " cannot be written as JSON: " << e.what());
        }
    }
    write_text_atomic(path, text);
}

// ---------------------------------------------------------------------------------------------
// Tokens.
using Tokenizer = std::function<std::vector<int32_t>(const std::string&)>;  // text -> ids, no BOS

struct EncodedPair {
    std::vector<int32_t> context, continuation;
};

// lm-eval's _encode_pair (and its empty-context case, which needs prefix_token >= 0).
inline EncodedPair encode_pair(const Tokenizer& encode, std::string context, std::string continuation,
                               int32_t prefix_token = -1) {
    EncodedPair p;
    if (context.empty()) {
        BITGRAD_CHECK(prefix_token >= 0,
                      "multiple choice: an empty context is scored after a prefix token (BOS); "
                      "none was given");
        p.context = {prefix_token};
        p.continuation = encode(continuation);
        return p;
    }
    const std::size_t keep = detail::py_rstrip_end(context);
    continuation = context.substr(keep) + continuation;
    context.resize(keep);
    const std::vector<int32_t> whole = encode(context + continuation);
    p.context = encode(context);
    if (whole.size() > p.context.size())
        p.continuation.assign(whole.begin() + std::ptrdiff_t(p.context.size()), whole.end());
    return p;
}

// What the model scores: tokens = the last max_length + 1 of context + continuation; it reads all but
// the last and sums the log-probabilities of the last `scored` (the continuation's).
struct TokenRequest {
    std::vector<int32_t> tokens;
    int64_t scored = 0;
};

inline TokenRequest make_request(const EncodedPair& p, int64_t max_length, const std::string& where) {
    BITGRAD_CHECK(!p.context.empty(), where << ": the context encodes to no tokens (lm-eval asserts it has some)");
    BITGRAD_CHECK(!p.continuation.empty(), where
                                               << ": the continuation encodes to no tokens of its own "
                                                  "(encode(context + continuation) is no longer than encode(context))");
    BITGRAD_CHECK(
        int64_t(p.continuation.size()) <= max_length,
        where << ": the continuation has " << p.continuation.size() << " tokens, more than max_length " << max_length);
    TokenRequest r;
    r.tokens = p.context;
    r.tokens.insert(r.tokens.end(), p.continuation.begin(), p.continuation.end());
    if (int64_t(r.tokens.size()) > max_length + 1)  // truncated from the left
        r.tokens.erase(r.tokens.begin(), r.tokens.end() - std::ptrdiff_t(max_length + 1));
    r.scored = int64_t(p.continuation.size());
    return r;
}

// ---------------------------------------------------------------------------------------------
// Models. A Scorer returns each request's summed log-likelihood; max_length is the longest input.
struct Scorer {
    int64_t max_length = 0, vocab_size = 0;
    std::function<std::vector<double>(const std::vector<TokenRequest>&)> loglikelihoods;
};

// Any inference model (infer::CausalLM: a packed, float or bf16 infer::Decoder; a model in training
// through infer::FloatLlama(model)): one prefill a request, keeping
// the KV cache of the previous request's tokens when reuse_prefix: the choices of an item share
// their context, so each runs only from the context's last token on (positions past the cache's
// length are overwritten, so nothing is copied). The decoder must outlive the scorer; the scorer
// holds its cache, so one scorer serves one thread.
inline Scorer make_scorer(const infer::CausalLM& decoder, bool reuse_prefix = true) {
    struct State {
        infer::KvCache cache;
        std::vector<int32_t> cached;  // the tokens whose keys and values the cache holds
        std::vector<float> logits;
    };
    Scorer s;
    s.max_length = decoder.config().max_position_embeddings;
    s.vocab_size = decoder.config().vocab_size;
    s.loglikelihoods = [&decoder, reuse_prefix, st = std::make_shared<State>()](const std::vector<TokenRequest>& reqs) {
        const auto& c = decoder.config();
        const int64_t V = c.vocab_size;
        std::vector<double> lls;
        for (const auto& r : reqs) {
            const int64_t n = int64_t(r.tokens.size()), ctx = n - r.scored;
            BITGRAD_CHECK(r.scored >= 1 && ctx >= 1 && n - 1 <= c.max_position_embeddings,
                          "multiple choice: a request of " << n << " tokens scoring " << r.scored);
            // grows in steps of 64 positions (and follows a change of the model's cache format)
            if (st->cache.capacity < n - 1 || st->cache.format != decoder.kv_format()) {
                st->cached.clear();
                st->cache = decoder.new_cache(std::min(c.max_position_embeddings, (n - 1 + 63) / 64 * 64));
            }
            int64_t p = 0;
            if (reuse_prefix)
                while (p < ctx - 1 && p < int64_t(st->cached.size()) &&
                       st->cached[std::size_t(p)] == r.tokens[std::size_t(p)])
                    ++p;
            st->cached.clear();
            st->cache.length = p;
            st->logits.resize(std::size_t(r.scored * V));
            decoder.forward(r.tokens.data() + p, n - 1 - p, st->cache, st->logits.data(), r.scored);
            st->cached.assign(r.tokens.begin(), r.tokens.end() - 1);
            double ll = 0;
            for (int64_t k = 0; k < r.scored; ++k)
                ll -= kernels::nll_row<float, double>(st->logits.data() + k * V, V, r.tokens[std::size_t(ctx + k)]);
            lls.push_back(ll);
        }
        return lls;
    };
    return s;
}

// ---------------------------------------------------------------------------------------------
// Metrics.
struct MultipleChoiceResult {
    int64_t n = 0;
    double acc = 0, acc_stderr = 0;
    bool has_acc_norm = false;  // every item ordinary (none partial)
    double acc_norm = 0, acc_norm_stderr = 0;
    std::vector<std::vector<double>> loglikelihoods;  // [item][choice]
    std::vector<int64_t> pred, pred_norm;             // argmax of ll, of ll / len(choice) (-1 if partial)
};

namespace detail {
// metrics.mean_stderr of 0/1 values with mean p: sqrt(p (1 - p) / (n - 1)); NaN for n < 2 (lm-eval: "N/A").
inline double binary_stderr(double p, int64_t n) {
    return n < 2 ? std::numeric_limits<double>::quiet_NaN() : std::sqrt(p * (1 - p) / double(n - 1));
}
inline int64_t argmax_first(const std::vector<double>& v) {
    return int64_t(std::max_element(v.begin(), v.end()) - v.begin());  // the first of equal maxima
}
}  // namespace detail

// acc and acc_norm from each item's per-choice log-likelihoods.
inline MultipleChoiceResult score_multiple_choice(const std::vector<MultipleChoiceItem>& items,
                                                  std::vector<std::vector<double>> lls) {
    BITGRAD_CHECK(lls.size() == items.size() && !items.empty(),
                  "multiple choice: " << lls.size() << " score lists for " << items.size() << " items");
    MultipleChoiceResult r;
    r.n = int64_t(items.size());
    r.has_acc_norm = true;
    int64_t correct = 0, correct_norm = 0;
    for (std::size_t i = 0; i < items.size(); ++i) {
        const auto& it = items[i];
        BITGRAD_CHECK(int64_t(lls[i].size()) == it.num_choices(), "multiple choice: item "
                                                                      << i << " has " << it.num_choices()
                                                                      << " choices, " << lls[i].size() << " scores");
        r.pred.push_back(detail::argmax_first(lls[i]));
        correct += r.pred.back() == it.gold;
        if (it.partial()) {
            r.has_acc_norm = false;
            r.pred_norm.push_back(-1);
            continue;
        }
        std::vector<double> norm(lls[i].size());
        for (std::size_t k = 0; k < norm.size(); ++k) norm[k] = lls[i][k] / double(utf8_length(it.choices[k]));
        r.pred_norm.push_back(detail::argmax_first(norm));
        correct_norm += r.pred_norm.back() == it.gold;
    }
    r.acc = double(correct) / double(r.n);
    r.acc_stderr = detail::binary_stderr(r.acc, r.n);
    if (r.has_acc_norm) {
        r.acc_norm = double(correct_norm) / double(r.n);
        r.acc_norm_stderr = detail::binary_stderr(r.acc_norm, r.n);
    }
    r.loglikelihoods = std::move(lls);
    return r;
}

struct MultipleChoiceOptions {
    // Before an empty context (lm-eval's prefix_token_id: BOS where the tokenizer has one, EOS before
    // its PR #1588); -1: such contexts are refused. None of the seven tasks has one.
    int32_t prefix_token = -1;
    int64_t max_length = 0;       // longest model input; 0: the scorer's (max_position_embeddings, as HFLM)
    int64_t items_per_call = 64;  // items handed to the scorer at once; progress is reported after each call
};

// Tokenizes every request (lm-eval's encode_pair + truncation), scores them item block by item
// block, and computes the metrics. progress(items done, items).
inline MultipleChoiceResult evaluate_multiple_choice(const std::vector<MultipleChoiceItem>& items,
                                                     const Tokenizer& tokenize, const Scorer& scorer,
                                                     const MultipleChoiceOptions& o = {},
                                                     const std::function<void(int64_t, int64_t)>& progress = nullptr) {
    const int64_t max_length = o.max_length > 0 ? o.max_length : scorer.max_length;
    BITGRAD_CHECK(!items.empty(), "multiple choice: no items");
    BITGRAD_CHECK(max_length >= 1 && max_length <= scorer.max_length,
                  "multiple choice: max_length " << max_length << " must be in [1, " << scorer.max_length << "]");
    BITGRAD_CHECK(o.items_per_call > 0, "multiple choice: items_per_call " << o.items_per_call << " must be > 0");
    const int64_t total = int64_t(items.size());
    std::vector<std::vector<double>> lls(items.size());
    for (int64_t i0 = 0; i0 < total; i0 += o.items_per_call) {
        const int64_t i1 = std::min(total, i0 + o.items_per_call);
        std::vector<TokenRequest> reqs;
        for (int64_t i = i0; i < i1; ++i) {
            const auto& it = items[std::size_t(i)];
            const std::string item_where = it.source.empty() ? "item " + std::to_string(i) : it.source;
            validate_mc_item(it, item_where);
            const auto pairs = it.requests();
            for (std::size_t k = 0; k < pairs.size(); ++k) {
                const std::string where = item_where + " choice " + std::to_string(k);
                reqs.push_back(make_request(encode_pair(tokenize, pairs[k].first, pairs[k].second, o.prefix_token),
                                            max_length, where));
                for (int32_t id : reqs.back().tokens)
                    BITGRAD_CHECK(id >= 0 && id < scorer.vocab_size,
                                  where << ": token id " << id << " is outside the model's vocabulary of "
                                        << scorer.vocab_size << " (a tokenizer of another model?)");
            }
        }
        const std::vector<double> got = scorer.loglikelihoods(reqs);
        BITGRAD_CHECK(got.size() == reqs.size(), "multiple choice: the scorer returned " << got.size() << " values for "
                                                                                         << reqs.size() << " requests");
        std::size_t k = 0;
        for (int64_t i = i0; i < i1; ++i)
            for (int64_t c = 0; c < items[std::size_t(i)].num_choices(); ++c) lls[std::size_t(i)].push_back(got[k++]);
        if (progress) progress(i1, total);
    }
    return score_multiple_choice(items, std::move(lls));
}

}  // namespace bitgrad::eval
