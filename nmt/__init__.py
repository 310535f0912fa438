"""nmt: RNN encoder-decoder translation with inspectable attention."""

__version__ = "0.1.0"
