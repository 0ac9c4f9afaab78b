#pragma once
// Token shards and sampling. The SentencePiece tokenizer (bitgrad/data/sentencepiece.hpp) is not
// included here: it needs libsentencepiece at link time.
#include "bitgrad/data/token_shard.hpp"
