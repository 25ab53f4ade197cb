"""The request limits, settable per deployment, and what every kind's request schema shares.

The CDK app reads the limits from the settings and gives them to each function (REQUEST_LIMITS, TEXT_LIMITS); each
kind's schema (model_api.kinds) is built from them, so the handler enforces the same numbers deployed and in local
mode.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Mapping

SEED_MAX = 2**32 - 1
# Characters that show nothing: white space, and the invisible format characters (zero-width space and joiners,
# word joiner, BOM, soft hyphen, bidi marks, Hangul fillers). A prompt made only of these is blank.
BLANK_CHARACTERS = (r"\t-\r \u0085\u00a0\u00ad\u034f\u115f\u1160\u1680\u180e\u2000-\u200f\u2028-\u202f"
                    r"\u205f-\u2064\u206a-\u206f\u3000\u3164\ufeff\uffa0")
# "Has at least one visible character", written so that it means the same whether the engine searches (Python's
# re.search, our validator) or matches the whole string (API Gateway's model validator is not ours, and draft 4 does
# not say which): anchored at both ends, it can only match the whole string, and it does so exactly when one
# character outside BLANK_CHARACTERS is present. Only escapes common to ECMA 262, Java and Python are used.
NOT_BLANK = f"^[{BLANK_CHARACTERS}]*[^{BLANK_CHARACTERS}][\\s\\S]*$"
# Multiple of 8: Stable Diffusion's VAE downsamples by 8, other sizes fail or are cropped inside the pipeline.
SIZE_MULTIPLE = 8


@dataclass(frozen=True)
class ImageLimits:
    """Bounds of one image request. Settable per deployment (deployment/settings.py); the Lambda reads them from its
    environment (REQUEST_LIMITS), so the gateway, the handler and local mode enforce the same numbers."""

    max_prompt_chars: int = 1000
    min_size: int = 256
    max_size: int = 768
    default_size: int = 512
    max_steps: int = 50
    default_steps: int = 30
    max_images: int = 4
    max_guidance_scale: float = 20.0
    default_guidance_scale: float = 7.5

    def problems(self) -> list[str]:
        """Everything wrong with these limits, as messages (empty when valid)."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                out.append(f"{f.name} must be a positive number (got {value!r})")
        if out:
            return out
        for name in ("min_size", "max_size", "default_size"):
            if getattr(self, name) % SIZE_MULTIPLE:
                out.append(f"{name} must be a multiple of {SIZE_MULTIPLE} (got {getattr(self, name)})")
        if not self.min_size <= self.default_size <= self.max_size:
            out.append(f"default_size must lie within min_size..max_size ({self.min_size}..{self.max_size})")
        if self.max_size > 2048:
            out.append(f"max_size must be at most 2048 (got {self.max_size})")
        if self.default_steps > self.max_steps:
            out.append(f"default_steps ({self.default_steps}) must not exceed max_steps ({self.max_steps})")
        if self.max_steps > 500:
            out.append(f"max_steps must be at most 500 (got {self.max_steps})")
        if self.max_images > 8:
            out.append(f"max_images must be at most 8 (got {self.max_images})")
        if self.default_guidance_scale > self.max_guidance_scale:
            out.append("default_guidance_scale must not exceed max_guidance_scale")
        if self.max_prompt_chars > 10000:
            out.append(f"max_prompt_chars must be at most 10000 (got {self.max_prompt_chars})")
        return out

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "ImageLimits":
        return cls(**json.loads(text))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ImageLimits":
        text = env.get("REQUEST_LIMITS")
        return cls.from_json(text) if text else cls()


# ---------------------------------------------------------------------------------------------------- text models


@dataclass(frozen=True)
class TextLimits:
    """Bounds of text-generation, chat and embeddings requests (settable like ImageLimits)."""

    max_input_chars: int = 8000
    max_new_tokens: int = 1024
    default_max_new_tokens: int = 128
    max_batch_inputs: int = 32
    max_messages: int = 50

    def problems(self) -> list[str]:
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                out.append(f"{f.name} must be a positive whole number (got {value!r})")
        if not out and self.default_max_new_tokens > self.max_new_tokens:
            out.append(f"default_max_new_tokens ({self.default_max_new_tokens}) must not exceed max_new_tokens "
                       f"({self.max_new_tokens})")
        return out

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "TextLimits":
        text = env.get("TEXT_LIMITS")
        return cls(**json.loads(text)) if text else cls()
