"""Generation stops at the request's deadline (REQUEST_DEADLINE_SECONDS, set by the stack one second past the
Lambda's wait; local mode's --timeout), in the chat code as deployed and in the TGI stand-in: a reply nobody will
read is not finished."""

from __future__ import annotations


def test_the_chat_code_stops_generating_at_its_deadline(chat_inference, tiny_lm_dir, monkeypatch):
    bundle = chat_inference.model_fn(str(tiny_lm_dir))
    messages = [{"role": "user", "content": "Hello"}]
    # min_new_tokens: the tiny model's end-of-text token cannot end it early; only the deadline can.
    whole = chat_inference.reply(bundle["model"], bundle["tokenizer"], messages,
                                 {"max_new_tokens": 40, "min_new_tokens": 40})
    monkeypatch.setattr(chat_inference, "REQUEST_DEADLINE_SECONDS", 1e-9)
    cut = chat_inference.reply(bundle["model"], bundle["tokenizer"], messages,
                               {"max_new_tokens": 40, "min_new_tokens": 40})
    assert len(bundle["tokenizer"](cut)["input_ids"]) < len(bundle["tokenizer"](whole)["input_ids"]) // 4


def test_the_tgi_stand_in_stops_generating_at_its_deadline(tiny_lm_dir):
    from local.tgi import TgiModel

    model = TgiModel(tiny_lm_dir, deadline_seconds=1e-9)
    model._generate("Hello", {"max_new_tokens": 40})
    assert model.last_details["generated_tokens"] < 10
    assert TgiModel(tiny_lm_dir)._generate("Hello", {"max_new_tokens": 5}) is not None
