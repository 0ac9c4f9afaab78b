#!/usr/bin/env python3
"""The FBI-LLM distillation step in PyTorch: the baseline bitgrad's llama_bench compares with.

Same step as bench/nn/llama.bench.cpp: a full-precision LLaMA teacher forward (no grad), the FBI-LLM
student (every decoder linear binarized: W_hat = alpha * sign(W) + beta, identity STE, sign(0) = +1)
forward, the autoregressive-distillation loss (soft cross-entropy to the teacher), backward,
gradient clipping at 1.0 and AdamW. Random weights and tokens; B=4, T=256 by default.

Prints one JSON line per (precision, threads), like llama_bench. Not a dependency of bitgrad: run it
by hand to compare (Debian: apt-get install python3-torch), ideally through bench/pytorch/run.sh,
which sets the allocator and OpenMP settings that make PyTorch fastest on a small VM.
  usage: fbi_step.py [--preset 130M] [--batch 4] [--seq 256] [--steps 3] [--threads 1,2] [--precision fp32,bf16]
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {"tiny": (2, 16, 32, 4, 64), "130M": (12, 768, 2048, 12, 32000), "1.3B": (24, 2048, 5632, 32, 32000)}


class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w):
        return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))

    @staticmethod
    def backward(ctx, g):
        return g  # identity straight-through estimator (FBI-LLM's reference)


class FBILinear(nn.Module):
    def __init__(self, fin, fout):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fout, fin) * 0.02)
        beta = self.weight.detach().mean(0, keepdim=True)
        self.wbias = nn.Parameter(beta.clone())
        self.wscale = nn.Parameter((self.weight.detach() - beta).abs().mean(0, keepdim=True))

    def forward(self, x):
        w_hat = self.wscale * SignSTE.apply(self.weight) + self.wbias
        return F.linear(x, w_hat)


def dense(fin, fout):
    lin = nn.Linear(fin, fout, bias=False)
    nn.init.normal_(lin.weight, std=0.02)
    return lin


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, cos, sin):  # x [B, T, H, D], rotate-half
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Block(nn.Module):
    def __init__(self, C, I, H, lin):
        super().__init__()
        self.H, self.D = H, C // H
        self.q, self.k, self.v, self.o = lin(C, C), lin(C, C), lin(C, C), lin(C, C)
        self.gate, self.up, self.down = lin(C, I), lin(C, I), lin(I, C)
        self.n1, self.n2 = RMSNorm(C), RMSNorm(C)

    def forward(self, x, cos, sin, mask):
        B, T, C = x.shape
        h = self.n1(x)
        q = rope(self.q(h).view(B, T, self.H, self.D), cos, sin).transpose(1, 2)
        k = rope(self.k(h).view(B, T, self.H, self.D), cos, sin).transpose(1, 2)
        v = self.v(h).view(B, T, self.H, self.D).transpose(1, 2)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.D) + mask
        o = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.o(o)
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(nn.Module):
    def __init__(self, L, C, I, H, V, lin):
        super().__init__()
        self.embed = nn.Embedding(V, C)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.layers = nn.ModuleList([Block(C, I, H, lin) for _ in range(L)])
        self.norm = RMSNorm(C)
        self.lm_head = dense(C, V)
        self.H, self.D = H, C // H

    def forward(self, ids):
        T = ids.shape[1]
        inv = 10000.0 ** (-torch.arange(0, self.D // 2, dtype=torch.float32) * 2 / self.D)
        ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
        cos, sin = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.norm(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="130M")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--precision", default="fp32,bf16")
    a = ap.parse_args()
    L, C, I, H, V = PRESETS[a.preset]
    torch.manual_seed(0)
    student = Llama(L, C, I, H, V, FBILinear)
    teacher = Llama(L, C, I, H, V, dense).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(student.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    ids = torch.randint(0, V, (a.batch, a.seq))
    tokens = a.batch * a.seq
    matmul_params = C * V + sum(p.numel() for n, p in student.named_parameters() if n.endswith("weight") and p.dim() == 2 and "embed" not in n and "lm_head" not in n)
    for precision in a.precision.split(","):
        for threads in [int(t) for t in a.threads.split(",")]:
            torch.set_num_threads(threads)
            autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")

            def step():
                t0 = time.perf_counter()
                with torch.no_grad(), autocast:
                    t_logits = teacher(ids).float()
                t1 = time.perf_counter()
                opt.zero_grad(set_to_none=False)
                with autocast:
                    s_logits = student(ids)
                loss = -(F.softmax(t_logits, -1) * F.log_softmax(s_logits.float(), -1)).sum(-1).mean()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
                opt.step()
                return t1 - t0, time.perf_counter() - t0, float(loss)

            step()  # warm-up
            best = min((step() for _ in range(a.steps)), key=lambda r: r[1])
            teacher_s, step_s, loss = best
            flops = 8.0 * matmul_params * tokens
            print(json.dumps({"bench": "pytorch_distill_step", "preset": a.preset, "precision": precision, "torch": torch.__version__,
                              "B": a.batch, "T": a.seq, "threads": threads, "step_seconds": round(step_s, 3),
                              "teacher_forward_seconds": round(teacher_s, 3), "tokens_per_s": round(tokens / step_s, 1),
                              "gflops": round(flops / step_s * 1e-9, 1),
                              "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                              "loss": round(loss, 4)}), flush=True)


if __name__ == "__main__":
    main()
