"""The bridge: the decoder's initial recurrent state from the encoder's final states.

Shapes: B batch, L_enc / L encoder / decoder layers, D encoder state size (directions
concatenated), H decoder hidden.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.config import ModelConfig


class Bridge(nn.Module):
    """``s_0^l = tanh(W^l [h_fwd; h_bwd] + b^l)`` per decoder layer l, or zeros.

    ``bridge="learned"``: one Linear per decoder layer reads the final states of both directions,
    concatenated. When ``enc_layers == dec_layers`` layer l reads encoder layer l; otherwise every
    decoder layer reads the top encoder layer (the most abstract summary; it works for any pair
    of depths). For an LSTM the cell state gets its own Linears of the same form (tanh included,
    which keeps the initial cell in [-1, 1] like the hidden state).
    ``bridge="zeros"``: all-zero states and no parameters.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        enc_dim = cfg.enc_hidden * (2 if cfg.bidirectional else 1)
        self.layers, self.hidden = cfg.dec_layers, cfg.dec_hidden
        self.learned = cfg.bridge == "learned"
        self.lstm = cfg.rnn == "lstm"
        self.hidden_maps: nn.ModuleList | None = None
        self.cell_maps: nn.ModuleList | None = None
        if self.learned:
            self.hidden_maps = self._linears(enc_dim)
            self.cell_maps = self._linears(enc_dim) if self.lstm else None

    def _linears(self, enc_dim: int) -> nn.ModuleList:
        return nn.ModuleList(nn.Linear(enc_dim, self.hidden) for _ in range(self.layers))

    def forward(
        self, final_state: Tensor, final_cell: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        """Encoder finals (B,L_enc,D) -> decoder hidden (B,L,H) and cell (B,L,H) or None."""
        if not self.learned:
            zeros = final_state.new_zeros(final_state.size(0), self.layers, self.hidden)
            return zeros, (zeros.clone() if self.lstm else None)
        hidden = self._map(final_state, self.hidden_maps)
        cell = self._map(final_cell, self.cell_maps) if self.lstm else None
        return hidden, cell

    def _map(self, final: Tensor, maps: nn.ModuleList) -> Tensor:
        if final.size(1) != self.layers:
            final = final[:, -1:].expand(-1, self.layers, -1)  # top layer feeds all: (B,L,D)
        return torch.stack([torch.tanh(m(final[:, i])) for i, m in enumerate(maps)], dim=1)
