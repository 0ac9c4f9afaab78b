#pragma once
// The unigram baseline: how well token frequencies alone predict held-out text. A model that has
// learned anything must beat it.
//   p(c) = (count_train(c) + 1) / (N_train + V)           (add-one smoothing: no zero probability)
//   nll = mean over validation tokens 1..n-1 of -log p(token)   (token 0, the BOS, is not predicted,
//   as in eval::perplexity)
#include <cmath>
#include <vector>

#include "bitgrad/data/token_shard.hpp"
#include "bitgrad/eval/perplexity.hpp"

namespace bitgrad::eval {

inline PerplexityResult unigram_perplexity(const data::TokenShard& train, const data::TokenShard& val) {
    BITGRAD_CHECK(val.size() >= 2, val.path() << ": " << val.size()
                                              << " tokens; the unigram baseline needs at least 2 (one is predicted)");
    BITGRAD_CHECK(val.vocab_size() <= train.vocab_size(), val.path() << ": vocabulary of " << val.vocab_size()
                                                                     << " tokens, larger than " << train.path() << "'s "
                                                                     << train.vocab_size());
    std::vector<double> counts(std::size_t(train.vocab_size()), 1.0);
    for (uint64_t i = 0; i < train.size(); ++i) counts[train[i]] += 1;
    const double total = double(train.size()) + double(counts.size());
    double nll = 0;
    for (uint64_t i = 1; i < val.size(); ++i) nll -= std::log(counts[val[i]] / total);
    PerplexityResult r;
    r.tokens = int64_t(val.size() - 1);
    r.nll = nll / double(r.tokens);
    r.perplexity = std::exp(r.nll);
    return r;
}

}  // namespace bitgrad::eval
