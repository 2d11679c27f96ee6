#!/usr/bin/env python3
"""YaRN golden values straight from HuggingFace transformers: the inverse
frequencies and cos/sin factor of `_compute_yarn_parameters`
(modeling_rope_utils.py) and the softmax-scale factor of DeepseekV3Attention
(mscale_all_dim squared), for several mscale / mscale_all_dim cases, partial
RoPE (HF's partial_rotary_factor) and widths with 8+ rotary pairs, so the
ramp between extrapolation and interpolation is partial (asserted below).

Writes tests/fixtures/yarn_golden.txt (format version 1):
    attnlab-yarn 1
    case <name> width <W> fraction <f> theta <t> factor <s> original <L0> beta_fast <bf> beta_slow <bs> mscale <m> mscale_all_dim <a>
    inv_freq <n> <values...>
    rotation_scale <value>
    softmax_factor <value>

Needs `pip install transformers` at generation time only; CI reads the file.
Run:  ~/.local/share/attnlab/venv/bin/python scripts/reference/yarn_fixture.py
"""
import math
import pathlib

import torch
import transformers
from transformers import LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "yarn_golden.txt"

CASES = [
    # name, head width, partial fraction, theta, factor, L0, beta_fast, beta_slow, mscale, mscale_all_dim
    ("llama-default", 32, 1.0, 10000.0, 4.0, 64, 32.0, 1.0, 1.0, 0.0),
    ("mscale-ignored", 32, 1.0, 10000.0, 4.0, 64, 32.0, 1.0, 0.707, 0.0),
    ("deepseek", 32, 1.0, 10000.0, 40.0, 128, 32.0, 1.0, 1.0, 1.0),
    ("deepseek-split", 32, 1.0, 10000.0, 8.0, 128, 32.0, 1.0, 1.0, 0.5),
    ("partial-half", 32, 0.5, 10000.0, 8.0, 256, 32.0, 1.0, 1.0, 0.0),
    ("betas", 48, 1.0, 500000.0, 16.0, 512, 16.0, 2.0, 1.0, 0.0),
]


def hf_yarn(width, fraction, theta, factor, orig, beta_fast, beta_slow, mscale, mscale_all_dim):
    rope = {"rope_type": "yarn", "rope_theta": theta, "factor": factor,
            "original_max_position_embeddings": orig, "beta_fast": beta_fast, "beta_slow": beta_slow}
    if fraction != 1.0:
        rope["partial_rotary_factor"] = fraction
    # HF treats a missing key and 0 alike ("if mscale and mscale_all_dim").
    if mscale:
        rope["mscale"] = mscale
    if mscale_all_dim:
        rope["mscale_all_dim"] = mscale_all_dim
    cfg = LlamaConfig(hidden_size=width * 4, num_attention_heads=4, head_dim=width,
                      max_position_embeddings=orig * int(factor), rope_parameters=rope)
    inv_freq, attention_factor = ROPE_INIT_FUNCTIONS["yarn"](cfg, "cpu")
    return inv_freq.double(), float(attention_factor)


def deepseek_softmax_factor(factor, mscale_all_dim):
    # DeepseekV3Attention.__init__: scaling *= yarn_get_mscale(factor, mscale_all_dim) ** 2 when non-zero.
    from transformers.models.deepseek_v3 import modeling_deepseek_v3 as ds
    if not mscale_all_dim:
        return 1.0
    m = ds.yarn_get_mscale(factor, mscale_all_dim)
    return m * m


def main():
    lines = ["attnlab-yarn 1", f"# transformers {transformers.__version__}, torch {torch.__version__}"]
    for name, width, fraction, theta, factor, orig, bf, bs, ms, msa in CASES:
        inv, att = hf_yarn(width, fraction, theta, factor, orig, bf, bs, ms, msa)
        dim = int(width * fraction)
        plain = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        ratio = (inv / plain).tolist()
        partial = [r for r in ratio if 1 / factor * 1.0001 < r < 0.9999]
        # The ramp must be partial: some pairs extrapolate, some interpolate, some lie between.
        assert len(inv) >= 8 and partial and ratio[0] > 0.9999 and ratio[-1] < 1 / factor * 1.0001, (name, ratio)
        lines.append(f"case {name} width {width} fraction {fraction} theta {theta} factor {factor} original {orig} "
                     f"beta_fast {bf} beta_slow {bs} mscale {ms} mscale_all_dim {msa}")
        lines.append(f"inv_freq {len(inv)} " + " ".join(f"{v:.9e}" for v in inv.tolist()))
        lines.append(f"rotation_scale {att:.12g}")
        lines.append(f"softmax_factor {deepseek_softmax_factor(factor, msa):.12g}")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT} ({len(CASES)} cases)")


if __name__ == "__main__":
    main()
