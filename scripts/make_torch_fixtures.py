#!/usr/bin/env python3
"""Writes the torch.save fixtures of tests/format/torch_checkpoint.test.cpp (tests/format/torch_fixtures/*.bin).

Made with Debian bookworm's python3-torch 1.13.1+dfsg-4 (torch.__version__ reports "1.13.0a0"),
which is installed for Debian's /usr/bin/python3 (3.11), not for other pythons on PATH:

    apt-get install -y python3-torch
    /usr/bin/python3 scripts/make_torch_fixtures.py tests/format/torch_fixtures

torch.save writes no timestamps, so running it again gives the same bytes. torch is never a
dependency of bitgrad or of its tests: the files are committed, and the test recomputes every value
from the formulas below (each one exact in its dtype), so a reader that gets a byte wrong fails.

Files (torch 1.13's zip layout: <archive>/data.pkl, <archive>/data/<key>..., <archive>/version,
stored, 64-byte aligned; the archive name is the file name without its extension):
  fbi_state_dict.bin  module.state_dict() of a tiny FBI-LLM-shaped model, pickle protocol 2: an
                      OrderedDict with _metadata (a BUILD), a tied lm_head (same storage as the
                      embedding), F32 weights with wscale/wbias and a BF16 norm.
  dtypes_views.bin    an OrderedDict, protocol 2: every dtype (F32 BF16 F16 F64 I64 I32 I16 I8 U8
                      BOOL), a 0-dim scalar, an empty [0, 4], and five views of one storage saved
                      as they are (whole, storage offset, transposed, strided columns, stride 0).
  nested_protocol4.bin  pickle protocol 4 (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL): a plain
                      dict {"model": {two tensors}, "step": 7, "lr": 0.5, "big": 2**40, "neg": -5,
                      "note": "fbi", "flags": [True, None, False]}.
  writer_ref.bin      36 contiguous tensors with storages of their own (1 to 5 dims, a scalar, empty
                      ones; F64 appears first after memo entry 255, so LONG_BINPUT and LONG_BINGET):
                      the test writes the same tensors with io::save_torch_state_dict and compares
                      data.pkl byte for byte.
"""
import collections
import os
import sys

import torch


def fbi_state_dict():
    class Proj(torch.nn.Module):
        def __init__(self, n_out, n_in, base):
            super().__init__()
            k = torch.arange(n_out * n_in, dtype=torch.float32)
            self.weight = torch.nn.Parameter((k * 0.5 - base).reshape(n_out, n_in))
            self.wscale = torch.nn.Parameter(1 + torch.arange(n_out, dtype=torch.float32) * 0.25)
            self.wbias = torch.nn.Parameter(torch.arange(n_out, dtype=torch.float32) * -0.5)

    class Attn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj = Proj(4, 4, 4)
            self.k_proj = Proj(2, 4, 1)

    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.self_attn = Attn()

    class Inner(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = torch.nn.Embedding(6, 4)
            with torch.no_grad():
                self.embed_tokens.weight.copy_(((torch.arange(24, dtype=torch.float32) - 12) * 0.125).reshape(6, 4))
            self.layers = torch.nn.ModuleList([Layer()])
            self.norm = torch.nn.Module()
            self.norm.weight = torch.nn.Parameter(1 + torch.arange(4, dtype=torch.bfloat16) * 0.0625)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = Inner()
            self.lm_head = torch.nn.Linear(4, 6, bias=False)
            self.lm_head.weight = self.model.embed_tokens.weight  # tied: one storage, two names

    return Model().state_dict()


def dtypes_views():
    sd = collections.OrderedDict()
    sd["f32"] = (torch.arange(6, dtype=torch.float32) * 0.5 - 1).reshape(2, 3)
    sd["bf16"] = (torch.arange(5, dtype=torch.float32) - 2).to(torch.bfloat16) * 0.25
    sd["f16"] = (torch.arange(4, dtype=torch.float16) * 0.125 + 0.5).reshape(2, 2)
    sd["f64"] = torch.arange(3, dtype=torch.float64) / 3
    sd["i64"] = torch.arange(4, dtype=torch.int64) * (1 << 40) - 3
    sd["i32"] = torch.arange(3, dtype=torch.int32) * -70000
    sd["i16"] = torch.arange(3, dtype=torch.int16) * -300
    sd["i8"] = torch.arange(4, dtype=torch.int8) - 2
    sd["u8"] = torch.arange(4, dtype=torch.uint8) * 60
    sd["bool"] = torch.arange(5) % 2 == 0
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 4)
    base = torch.arange(20, dtype=torch.float32) * 0.25  # one storage of 20 floats, five views of it
    sd["view.base"] = base.view(4, 5)
    sd["view.offset"] = base[5:11].view(2, 3)  # storage offset 5
    sd["view.transposed"] = base.view(4, 5).t()  # shape [5, 4], stride [1, 5]
    sd["view.columns"] = base.view(4, 5)[1:, 1:4:2]  # shape [3, 2], stride [5, 2], offset 6
    sd["view.expand"] = base[2:3].expand(3)  # stride 0
    return sd


def nested_protocol4():
    model = {
        "w": torch.arange(6, dtype=torch.float32).reshape(3, 2) - 2.5,
        "b": torch.arange(2, dtype=torch.float16) + 0.5,
    }
    return {"model": model, "step": 7, "lr": 0.5, "big": 2**40, "neg": -5, "note": "fbi", "flags": [True, None, False]}


def writer_reference():
    """Tensor i: w.{i}, value i + j * 0.5 - 1 at flat index j; shape shapes[i % 8]; dtype F32, BF16,
    F16 in turn for i < 33, F64 from i = 33 on."""
    dtypes = [torch.float32, torch.bfloat16, torch.float16]
    shapes = [(3,), (2, 3), (1, 2, 2), (2, 1, 1, 2), (1, 1, 2, 1, 1), (), (0, 3), (2, 0, 3)]
    sd = collections.OrderedDict()
    for i in range(36):
        shape = shapes[i % len(shapes)]
        n = 1
        for d in shape:
            n *= d
        dtype = dtypes[i % 3] if i < 33 else torch.float64
        sd[f"w.{i}"] = (i + torch.arange(n, dtype=torch.float64) * 0.5 - 1).to(dtype).reshape(shape)
    return sd


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/format/torch_fixtures"
    os.makedirs(out, exist_ok=True)
    torch.save(fbi_state_dict(), os.path.join(out, "fbi_state_dict.bin"))
    torch.save(dtypes_views(), os.path.join(out, "dtypes_views.bin"))
    torch.save(nested_protocol4(), os.path.join(out, "nested_protocol4.bin"), pickle_protocol=4)
    torch.save(writer_reference(), os.path.join(out, "writer_ref.bin"))
    print("torch", torch.__version__, "->", out)


if __name__ == "__main__":
    main()
