"""Other APIs' request and answer shapes over our actions (model_api.actions.Adapter): the OpenAI API under /v1
(model_api.adapters.openai) and Text Embeddings Inference's /embed (model_api.adapters.tei), so the clients people
already have (the openai SDK, huggingface_hub's InferenceClient) work as they are.

Each adapted route runs our own action's pipeline: the request is translated to our body, validated by our schema
(the translation already checked their fields by the same bounds, so their names are in every message), sent to
the model, stored, and the result translated back. Nothing here reaches AWS.
"""
