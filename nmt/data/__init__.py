"""Parallel corpora: sources, cleaning, the generated corpus, SentencePiece, batching, prepare."""
