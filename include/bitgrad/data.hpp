#pragma once
// Token shards, sampling and data.json. The SentencePiece tokenizer (bitgrad/data/sentencepiece.hpp)
// is not included here: it needs libsentencepiece at link time.
#include "bitgrad/data/dataset_info.hpp"
#include "bitgrad/data/token_shard.hpp"
