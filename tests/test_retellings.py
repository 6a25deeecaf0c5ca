"""The bundled re-tellings of AlexNet say what their sources' code says.

Each source's parameter count is worked out by hand here, layer by layer from the source's
code (not from archviz), and compared with the spec's analysis.
"""

from __future__ import annotations

from pathlib import Path

import archviz
from archviz.core.check import run_checks
from archviz.spec import bundled


def _params(stem: str) -> int:
    return archviz.analyze(archviz.load(stem)).totals.params


def test_keras_retelling_has_the_codes_parameter_count() -> None:
    # Convention: weights + biases + BatchNorm's trainable γ and β (2·C per BatchNorm), which is
    # what Keras prints as "Trainable params". The moving mean and variance (another 2·C each)
    # are buffers, which Keras adds as "Non-trainable params".
    conv1 = 96 * 3 * 11 * 11 + 96            # Conv2D(96, 11×11) on 3 channels:   34,944
    conv2 = 256 * 96 * 11 * 11 + 256         # Conv2D(256, 11×11) on 96:       2,973,952
    conv3 = 384 * 256 * 3 * 3 + 384          # Conv2D(384, 3×3) on 256:          885,120
    conv4 = 384 * 384 * 3 * 3 + 384          # Conv2D(384, 3×3) on 384:        1,327,488
    conv5 = 256 * 384 * 3 * 3 + 256          # Conv2D(256, 3×3) on 384:          884,992
    # valid padding, 2×2/2 pools: 224 → 54 → 27 → 17 → 8 → 6 → 4 → 2 → 1, so Flatten gives 256
    fc6 = 256 * 1 * 1 * 4096 + 4096          # Dense(4096) on 256:             1,052,672
    fc7 = 4096 * 4096 + 4096                 # Dense(4096) on 4096:           16,781,312
    fc8 = 4096 * 17 + 17                     # Dense(17) on 4096:                 69,649
    bn_channels = 96 + 256 + 384 + 384 + 256 + 4096 + 4096   # seven BatchNormalizations
    trainable = conv1 + conv2 + conv3 + conv4 + conv5 + fc6 + fc7 + fc8 + 2 * bn_channels
    assert trainable == 24_029_265
    assert 2 * bn_channels == 19_136 and trainable + 2 * bn_channels == 24_048_401  # Keras's total
    analysis = archviz.analyze(archviz.load("alexnet-keras"))
    assert analysis.totals.params == trainable
    # torch's BatchNorm also keeps num_batches_tracked: one more buffer per BatchNorm
    assert analysis.totals.buffers == 2 * bn_channels + 7


def test_keras_retelling_follows_the_code_not_the_prose() -> None:
    spec = archviz.load("alexnet-keras")
    ops = [(layer.name, layer.op) for layer in spec.layers]
    assert [n for n, op in ops if op == "linear"] == ["fc6", "fc7", "fc8"]  # no Dense(1000)
    assert [n for n, op in ops if op == "batchnorm"] == [f"bn{i}" for i in range(1, 8)]
    pools = [layer.params for layer in spec.layers if layer.op == "maxpool"]
    assert all(p.kernel == (2, 2) and p.stride == (2, 2) for p in pools)  # the prose: 3×3/2
    assert {layer.params.p for layer in spec.layers if layer.op == "dropout"} == {0.4}  # prose: 0.5
    assert spec.layer("fc8").params.out == 17
    assert all(r.ok for r in run_checks(archviz.analyze(spec)))


def test_cats_and_dogs_has_the_tutorials_parameter_count() -> None:
    conv1 = 96 * 3 * 11 * 11 + 96            #     34,944
    conv2 = 256 * 96 * 5 * 5 + 256           #    614,656 (one GPU: every input channel)
    conv3 = 384 * 256 * 3 * 3 + 384          #    885,120
    conv4 = 384 * 384 * 3 * 3 + 384          #  1,327,488
    conv5 = 256 * 384 * 3 * 3 + 256          #    884,992
    fc6 = 256 * 6 * 6 * 4096 + 4096          # 37,752,832
    fc7 = 4096 * 4096 + 4096                 # 16,781,312
    fc8 = 4096 * 2 + 2                       #      8,194 (cat, dog)
    total = conv1 + conv2 + conv3 + conv4 + conv5 + fc6 + fc7 + fc8
    assert total == 58_289_538 == _params("alexnet-catsdogs")


def test_cats_and_dogs_follows_the_code() -> None:
    spec = archviz.load("alexnet-catsdogs")
    names = [layer.name for layer in spec.layers]
    assert names[:3] == ["conv1", "norm1", "pool1"]  # no relu1: the tutorial's code has none
    assert spec.layer("conv1").params.padding == (2, 2)
    # torch's LocalResponseNorm(5, alpha=0.0001) divides alpha by the size: α = 0.0001 / 5
    for norm in ("norm1", "norm2"):
        assert spec.layer(norm).params.alpha == 0.0001 / 5 == 2e-5


def test_every_bundled_spec_is_format_2_or_later_and_names_its_source() -> None:
    """Format 2 (the paper's LRN α) at least; the sequence models need format 3 (token ids)."""
    for stem in bundled.names():
        spec = archviz.load(stem)
        assert spec.format >= 2 and (spec.format == 3 or spec.input_dtype == "float32"), stem
        assert len(spec.source) > 40, (stem, spec.source)
    assert "Section 3.5 and Figure 2" in archviz.load("alexnet").source
    assert "Keras 2" in archviz.load("alexnet-keras").source
    assert "torchvision 0.13" in archviz.load("alexnet-torchvision").source


def test_the_papers_lrn_alpha_is_the_papers() -> None:
    # Section 3.3: k = 2, n = 5, α = 10⁻⁴, β = 0.75, in b = a / (k + α·Σa²)^β
    norm = archviz.load("alexnet").layer("norm1").params
    assert (norm.size, norm.alpha, norm.beta, norm.k) == (5, 1e-4, 0.75, 2)


def test_sources_page_states_the_computed_counts() -> None:
    text = (Path(__file__).parent.parent / "docs" / "sources.md").read_text(encoding="utf-8")
    for stem in ("alexnet", "alexnet-1gpu", "alexnet-torchvision", "alexnet-keras", "alexnet-catsdogs"):
        assert f"{_params(stem):,}" in text, stem
    assert "253,440 = 96 × 55 × 48" in text and "150,528 = 3 × 224 × 224" in text
