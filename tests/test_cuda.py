"""The CUDA path against the CPU path: the same numbers, the same searches, a portable checkpoint.

Skipped where no GPU is visible (CI, the 2-core development machines); run on a lent GPU with
``python -m pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import pytest
import torch
from conftest import SRC_LENS, random_src, tiny_config, tiny_model

from nmt.config import DecodeConfig
from nmt.inference.beam import beam_search
from nmt.inference.decoding import load_translator
from nmt.inference.search import greedy
from nmt.training.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(autouse=True)
def exact_matmuls():
    """Full float32 on the GPU (no TF32), so CPU and CUDA agree to rounding."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("decoder", ["bahdanau", "luong"])
@pytest.mark.parametrize("attention", ["bahdanau", "general", "multihead"])
def test_loss_and_gradients_match_the_cpu(decoder, attention):
    """In float64, so that any difference beyond rounding is a device-specific bug."""
    cpu = tiny_model(decoder, attention).double().train()  # dropout 0: same on both devices
    gpu = tiny_model(decoder, attention).double().cuda().train()
    src, src_lens = random_src(SRC_LENS)
    tgt, _ = random_src([6, 4, 8, 2, 5], seed=1)
    losses = []
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        out = model.loss(
            src.to(device), src_lens, tgt[:, :-1].to(device), tgt[:, 1:].to(device), 0.1
        )
        out.loss.backward()
        losses.append(out.loss.item())
    assert losses[1] == pytest.approx(losses[0], rel=1e-10)
    mismatched = {}
    for (name, a), (_, b) in zip(cpu.named_parameters(), gpu.named_parameters(), strict=True):
        assert (a.grad is None) == (b.grad is None), name
        if a.grad is not None and not torch.allclose(b.grad.cpu(), a.grad, rtol=1e-7, atol=1e-9):
            mismatched[name] = (b.grad.cpu() - a.grad).abs().max().item(), a.grad.abs().max().item()
    assert not mismatched, f"(max |difference|, max |gradient|) per parameter: {mismatched}"


@pytest.mark.parametrize("decoder", ["bahdanau", "luong"])
def test_greedy_and_beam_find_the_same_outputs_as_on_the_cpu(decoder):
    cpu = tiny_model(decoder)
    gpu = tiny_model(decoder).cuda()
    src, src_lens = random_src(SRC_LENS)
    cfg = DecodeConfig(beam_size=4, alpha=1.0, n_best=2, max_len_ratio=1.5)
    with torch.no_grad():
        greedy_cpu = greedy(cpu, src, src_lens, max_len_ratio=1.5)
        greedy_gpu = greedy(gpu, src.cuda(), src_lens.cuda(), max_len_ratio=1.5)
        beam_cpu = beam_search(cpu, src, src_lens, cfg)
        beam_gpu = beam_search(gpu, src.cuda(), src_lens.cuda(), cfg)
    for a, b in zip(greedy_cpu, greedy_gpu, strict=True):
        assert b.tokens == a.tokens
        assert b.log_prob == pytest.approx(a.log_prob, abs=1e-4)
        torch.testing.assert_close(b.attn.cpu(), a.attn, rtol=1e-4, atol=1e-5)
    for nbest_cpu, nbest_gpu in zip(beam_cpu, beam_gpu, strict=True):
        assert [h.tokens for h in nbest_gpu] == [h.tokens for h in nbest_cpu]
        for a, b in zip(nbest_cpu, nbest_gpu, strict=True):
            assert b.score == pytest.approx(a.score, abs=1e-4)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_on_cuda_writes_a_checkpoint_the_cpu_can_translate_with(tmp_path, precision):
    result = train(
        tiny_config(tmp_path, device="cuda", precision=precision, max_steps=20), tmp_path / "run"
    )
    assert next(result.model.parameters()).is_cuda
    assert result.progress.step == 20
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    loaded = load_translator(str(tmp_path / "run" / "checkpoints" / "last.pt"), device="cpu")
    trained = {name: p.detach().cpu() for name, p in result.model.state_dict().items()}
    for name, tensor in loaded.model.state_dict().items():
        assert not tensor.is_cuda, name
        assert torch.equal(tensor, trained[name]), name  # the checkpoint holds what was trained
    src, src_lens = random_src([5, 3, 7], vocab=len(loaded.vocabs.src))
    with torch.no_grad():
        on_cpu = greedy(loaded.model, src, src_lens, max_len_ratio=1.5)
        on_gpu = greedy(result.model.eval(), src.cuda(), src_lens.cuda(), max_len_ratio=1.5)
    for a, b in zip(on_cpu, on_gpu, strict=True):
        assert b.tokens == a.tokens
        assert b.log_prob == pytest.approx(a.log_prob, abs=1e-3)


def test_aer_from_a_model_on_cuda_equals_the_cpu_one(trained_run):
    """Forced decoding moves its batches to the model's device (it once crashed on CUDA)."""
    from nmt.data.corpus import load_split
    from nmt.inference.scoring import forced_alignments

    links = []
    for device in ("cpu", "cuda"):
        translator = load_translator(str(trained_run), device=device)
        split = load_split(translator.data, "test")
        links.append(forced_alignments(translator, split, "argmax", 0.3))
    assert links[1] == links[0]
