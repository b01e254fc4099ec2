"""Serving: vLLM with LoRA adapters on GPUs, a CPU engine with the same OpenAI-compatible API, A/B routing.

Installed with the ``serve`` extra. Nothing is implemented here yet: serving arrives with its own issue
(see the README's roadmap).
"""
