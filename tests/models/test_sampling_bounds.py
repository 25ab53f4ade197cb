"""The sampling bounds of model_api.text hold in the model's own arithmetic: transformers' temperature and
repetition-penalty processors divide float32 logits, which at the bound stay finite for logits far larger than a
real model's, and which the smallest number inside "greater than 0" overflows (the 502 it used to be)."""

from __future__ import annotations

import pytest
import torch
from model_api.text import MAX_SAMPLING_DIVISOR, MIN_REPETITION_PENALTY, MIN_TEMPERATURE
from transformers import RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper

# Logits a thousand times a real language model's usual range (theirs: tens), both signs.
LOGITS = torch.tensor([[1000.0, -1000.0, 500.0, -3.0, 0.0]], dtype=torch.float32)
SEEN = torch.tensor([[0, 1, 2]])  # tokens already generated: the penalty applies to them


def probabilities(temperature: float, penalty: float) -> torch.Tensor:
    # float(): what the API hands the model (model_api.validation.normalized); transformers refuses ints here.
    scores = RepetitionPenaltyLogitsProcessor(float(penalty))(SEEN, LOGITS.clone())
    scores = TemperatureLogitsWarper(float(temperature))(SEEN, scores)
    return torch.softmax(scores, dim=-1)


@pytest.mark.parametrize("temperature,penalty", [(MIN_TEMPERATURE, MIN_REPETITION_PENALTY),
                                                 (MAX_SAMPLING_DIVISOR, MAX_SAMPLING_DIVISOR),
                                                 (MIN_TEMPERATURE, MAX_SAMPLING_DIVISOR)])
def test_at_the_bounds_the_model_can_sample(temperature, penalty):
    probs = probabilities(temperature, penalty)
    assert torch.isfinite(probs).all() and abs(float(probs.sum()) - 1) < 1e-5
    torch.multinomial(probs, 1)  # what generate() does with them


@pytest.mark.parametrize("temperature,penalty", [(5e-324, 1.0), (1.0, 5e-324)])
def test_below_them_sampling_fails(temperature, penalty):
    probs = probabilities(temperature, penalty)
    assert not torch.isfinite(probs).all()
    with pytest.raises(RuntimeError, match="probability tensor contains"):
        torch.multinomial(probs, 1)
