"""Decoding: greedy and beam search, the inference layer (decoding.py), alignments, scoring."""
