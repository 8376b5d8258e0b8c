"""Tokenizing into GPT-NeoX/Megatron indexed datasets (issue 7: the binary writer so far)."""
