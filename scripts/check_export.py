#!/usr/bin/python3
"""Checks a `bitgrad export` directory the way FBI-LLM's reference code loads it (run by hand;
torch is never a dependency of bitgrad or its tests).

FBI-LLM's eval.py (load_ckpts) builds transformers' LlamaForCausalLM, replaces every nn.Linear but
lm_head with BinaryLinearWscales(scaling_pattern="column") -- parameters weight [out, in], wscale
[1, in], wbias [1, in] -- and calls model.load_state_dict(weights) (strict) on every *.bin file
(torch.load) or *.safetensors file of the directory. This script rebuilds that module tree with
the same names and shapes from config.json (transformers itself is not packaged by Debian), loads
pytorch_model.bin with torch.load(weights_only=True) and model.safetensors (parsed by hand: Debian
has no python3-safetensors) strictly into it, and checks both files hold the same values.

    /usr/bin/python3 scripts/check_export.py EXPORT_DIR      (apt-get install python3-torch)
"""
import json
import struct
import sys
from pathlib import Path

import torch
from torch import nn

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}


class BinaryLinearWscales(nn.Module):  # the reference's parameter layout, scaling_pattern="column"
    def __init__(self, fin, fout):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(fout, fin))
        self.wscale = nn.Parameter(torch.zeros(1, fin))
        self.wbias = nn.Parameter(torch.zeros(1, fin))


class Norm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim))


def llama_for_causal_lm(c, binarized):
    """transformers' LlamaForCausalLM module names (4.32+: no persistent rotary buffers)."""
    C, I = c["hidden_size"], c["intermediate_size"]
    H, D = c["num_attention_heads"], c["hidden_size"] // c["num_attention_heads"]
    KV = c.get("num_key_value_heads", H) * D
    lin = BinaryLinearWscales if binarized else (lambda fin, fout: nn.Linear(fin, fout, bias=False))
    root = nn.Module()
    root.model = nn.Module()
    root.model.embed_tokens = nn.Embedding(c["vocab_size"], C)
    root.model.layers = nn.ModuleList()
    for _ in range(c["num_hidden_layers"]):
        layer = nn.Module()
        layer.self_attn = nn.Module()
        for name, fin, fout in [("q_proj", C, H * D), ("k_proj", C, KV), ("v_proj", C, KV), ("o_proj", H * D, C)]:
            setattr(layer.self_attn, name, lin(fin, fout))
        layer.mlp = nn.Module()
        for name, fin, fout in [("gate_proj", C, I), ("up_proj", C, I), ("down_proj", I, C)]:
            setattr(layer.mlp, name, lin(fin, fout))
        layer.input_layernorm = Norm(C)
        layer.post_attention_layernorm = Norm(C)
        root.model.layers.append(layer)
    root.model.norm = Norm(C)
    root.lm_head = nn.Linear(C, c["vocab_size"], bias=False)
    return root


def read_safetensors(path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=DTYPES[info["dtype"]]) if e > b else torch.zeros(0)
        out[name] = t.reshape(info["shape"])
    return out


def main():
    d = Path(sys.argv[1])
    config = json.loads((d / "config.json").read_text())
    binarized = bool(config.get("bitgrad_binarized", False))
    loaded = {}
    if (d / "pytorch_model.bin").exists():
        loaded["pytorch_model.bin"] = torch.load(d / "pytorch_model.bin", weights_only=True)
    if (d / "model.safetensors").exists():
        loaded["model.safetensors"] = read_safetensors(d / "model.safetensors")
    assert loaded, f"{d}: neither pytorch_model.bin nor model.safetensors"
    for file, state in loaded.items():
        model = llama_for_causal_lm(config, binarized)
        model.load_state_dict(state, strict=True)  # raises on a missing, extra or mis-shaped tensor
        dtypes = sorted({str(v.dtype) for v in state.values()})
        print(f"{file}: {len(state)} tensors, {sum(v.numel() for v in state.values())} values, {dtypes}: "
              f"strict load_state_dict into the reference's module tree ok")
    if len(loaded) == 2:
        a, b = loaded.values()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "the two files differ"
        print("pytorch_model.bin and model.safetensors hold the same values")


if __name__ == "__main__":
    main()
