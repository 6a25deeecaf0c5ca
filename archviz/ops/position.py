"""Where a transformer's tokens are: ``pos_embedding`` (a position's vector added to each token,
learned as GPT-2's ``wpe`` or the sinusoids of Vaswani et al. 2017 §3.5), ``cls_token`` (ViT's
learned class token prepended to the sequence) and ``patch_embed`` (ViT's patches: a conv with
kernel = stride = patch, flattened to a sequence). torch has no module for them: archviz's own
(:mod:`archviz.runtime.layers`) hold the weights under the names a checkpoint maps to."""

from __future__ import annotations

from math import prod

from . import receptive as rf
from .fields import BoolField, ChoiceField, Count, PosInt, Settings, param
from .registry import Inferred, NoParams, OpError, OpKind, Shape, TorchLayer, register
from .saved import Autocast, Saved, SavedTensor, Temporaries, matmul_saved
from .source import Mapped, Source, Split, Unmapped

KINDS = ("learned", "sinusoidal")


def is_sinusoidal(table: object) -> bool:
    """``table`` (S, D) is the sinusoidal one (rows 0…S−1) to float32 rounding: PE(pos, 2i) =
    sin(pos/10000^(2i/D)), PE(pos, 2i+1) = cos(pos/10000^(2i/D)) (Vaswani et al. 2017, §3.5, as
    archviz's module computes it)."""
    import numpy as np

    t = np.asarray(table)
    if t.ndim != 2 or not t.size or not np.issubdtype(t.dtype, np.floating):
        return False
    d = t.shape[1]
    angles = np.arange(t.shape[0], dtype=np.float64)[:, None] * 10000.0 ** (-np.arange(0, d, 2) / d)
    want = np.zeros(t.shape)
    want[:, 0::2], want[:, 1::2] = np.sin(angles), np.cos(angles[:, : d // 2])
    return bool(np.allclose(t.astype(np.float64), want, rtol=0.0, atol=2e-7))


class PosEmbeddingParams(Settings):
    """The settings of ``pos_embedding``."""
    kind: str = param(ChoiceField(choices=KINDS, doc="learned: a trained (length, D) table (GPT-2's wpe);"
                                                     " sinusoidal: fixed sines and cosines (Vaswani et al."
                                                     " 2017 §3.5), a buffer"), "learned")
    length: int | None = param(PosInt(doc="positions the table holds (GPT-2: 1024); default: S of the"
                                          " input"), None)
    start: int = param(Count(doc="the position of the first token (a continued sequence)"), 0)


@register
class PosEmbedding(OpKind):
    """out[s] = x[s] + table[start + s]: a position's vector added to the token at that position."""

    name, family = "pos_embedding", "embedding"
    doc = ("a position's vector added to each token, learned (GPT-2's wpe) or sinusoidal (Vaswani et al."
           " 2017): (S, D) → (S, D)")
    Params = PosEmbeddingParams
    example = {"name": "wpe", "op": "pos_embedding", "length": 16}
    example_input = ((12, 8), "float32")
    ranks = (2,)
    torch_modules = ("archviz.runtime.layers.PosEmbedding",)
    onnx_weights = ("weight",)   # also the key of a table a call reads as rows (x + wpe(arange(S)))
    # slice: x + table[start:start + S]; lookup: x + an embedding of the positions start…, as
    # Hugging Face's wpe(position_ids) runs it (the same values; its backward keeps the ids)
    lowerings = ("slice", "lookup")

    @staticmethod
    def table(p: PosEmbeddingParams, ins: tuple[Shape, ...]) -> Shape:
        """The (length, D) table: ``length`` rows, default S."""
        s, d = ins[0]
        return (p.length or s, d)

    def infer(self, p: PosEmbeddingParams, ins: tuple[Shape, ...]) -> Inferred:
        s, d = ins[0]
        n = self.table(p, ins)[0]
        if p.start + s > n:
            key = "length" if p.length is not None else "start"
            raise OpError(f"positions {p.start}…{p.start + s - 1} of {s} tokens do not fit a table of"
                          f" length {n:,}", key, hint="hint: a longer `length`, or a shorter input")
        rows = f"{p.start}…{p.start + s - 1}" if s > 1 else str(p.start)
        return Inferred((s, d), f"+ rows {rows} of the {n:,}×{d} {p.kind} table")

    def params(self, p: PosEmbeddingParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(self.table(p, ins)) if p.kind == "learned" else 0   # weight (length, D)

    def buffers(self, p: PosEmbeddingParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(self.table(p, ins)) if p.kind == "sinusoidal" else 0   # PE (length, D), fixed

    def tied_weight(self, p: PosEmbeddingParams, ins: tuple[Shape, ...]) -> Shape | None:
        return self.table(p, ins) if p.kind == "learned" else None

    def work(self, p: PosEmbeddingParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(out)   # one add per element

    def saved(self, p: PosEmbeddingParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # x + weight[start:start + S]: add's backward needs no tensor, the slice of the table is a
        # view of a parameter or buffer (not counted again); the fp32 table promotes a half x to
        # fp32, add being no autocast op (measured with saved_tensors_hooks, fp32 and bf16). The
        # lookup's embedding keeps its (1, S) int64 position ids, once for the batch, where the
        # table learns (tests/test_cost_hf.py)
        if lowering == "lookup" and p.kind == "learned":
            return Saved((SavedTensor("position ids", ins[0][0], "int64", per_image=False),), "fp32")
        return Saved((), "fp32")

    def temporaries(self, p: PosEmbeddingParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
                    lowering: str = "") -> Temporaries:
        return Temporaries(grad_alias=True)   # AddBackward passes the gradient on to x

    def torch(self, p: PosEmbeddingParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        kw = TorchLayer.given({"kind": "learned", "start": 0, "lookup": False}, kind=p.kind, start=p.start,
                              lookup=lowering == "lookup")
        return TorchLayer("PosEmbedding", self.table(p, ins), kw)

    def split(self, p: PosEmbeddingParams, ins: tuple[Shape, ...]) -> Split:
        return Split(refuse="its rows are positions, not channels")

    def from_module(self, src: Source) -> Mapped:
        """archviz's own PosEmbedding (a compiled spec imports back). Hugging Face GPT-2's ``wpe``
        is an nn.Embedding of ``torch.arange`` positions: see docs/spec-format.md (written by hand)."""
        a = src.attrs
        lookup = {"lowering": "lookup"} if a.get("lookup") else {}
        return self.layer(kind=a["kind"], length=a["length"], start=a["start"], **lookup)

    def label(self, p: PosEmbeddingParams) -> str:
        return p.kind + (f", {p.length:,}" if p.length else "")


@register
class ClsToken(OpKind):
    """out = [token; x]: one learned (D,) vector before the sequence (ViT's class token)."""

    name, family = "cls_token", "embedding"
    doc = "a learned class token prepended to the sequence (ViT): (S, D) → (S + 1, D)"
    example = {"name": "class_token", "op": "cls_token"}
    example_input = ((12, 8), "float32")
    ranks = (2,)
    torch_modules = ("archviz.runtime.layers.ClsToken",)
    onnx_weights = ("weight",)   # the key of the token a call reads (cat([token.expand(N, -1, -1), x], 1))

    def infer(self, p: NoParams, ins: tuple[Shape, ...]) -> Inferred:
        s, d = ins[0]
        return Inferred((s + 1, d), f"1 + {s:,} = {s + 1:,} positions: a learned {d}-vector first")

    def params(self, p: NoParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return ins[0][1]   # the token, (1, 1, D) as torchvision keeps it

    def saved(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # cat([token.expand(N, 1, D), x], 1): cat's backward slices the gradient and expand's sums
        # it: nothing saved; the fp32 token promotes a half x (measured, fp32 and bf16)
        return Saved((), "fp32")

    def temporaries(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
                    lowering: str = "") -> Temporaries:
        return Temporaries(grad_alias=True)   # x's gradient is a slice of the output's

    def receptive(self, p: NoParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        return rf.NONE   # positions move by one and the token reads no pixel: no regular grid

    def torch(self, p: NoParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("ClsToken", (ins[0][1],))

    def split(self, p: NoParams, ins: tuple[Shape, ...]) -> Split:
        return Split(refuse="its rows are positions, not channels")

    def from_module(self, src: Source) -> Mapped:
        return self.layer()


class PatchEmbedParams(Settings):
    """The settings of ``patch_embed``."""
    patch: int = param(PosInt(doc="the side of a square patch (ViT-B/16: 16): the conv's kernel and stride"))
    dim: int = param(PosInt(doc="D, the vector each patch becomes"))
    bias: bool = param(BoolField(), True)


@register
class PatchEmbed(OpKind):
    """ViT's patch embedding (Dosovitskiy et al. 2021, eq. 1): each p×p patch of the image
    flattened and projected to D, as a conv with kernel = stride = p, then (D, H/p, W/p) →
    (N, D) with N = (H/p)·(W/p) (torchvision's ``conv_proj`` then flatten and transpose)."""

    name, family = "patch_embed", "conv"
    doc = "ViT's patch embedding: a conv with kernel = stride = patch, as a sequence: (C, H, W) → (N, dim)"
    Params = PatchEmbedParams
    example = {"name": "patch", "op": "patch_embed", "patch": 4, "dim": 16}
    counts_neurons = True
    ranks = (3,)
    torch_modules = ("archviz.runtime.layers.PatchEmbed",)

    def infer(self, p: PatchEmbedParams, ins: tuple[Shape, ...]) -> Inferred:
        c, h, w = ins[0]
        if h % p.patch or w % p.patch:
            raise OpError(f"a {h}×{w} image does not divide into {p.patch}×{p.patch} patches", "patch",
                          hint=f"hint: an image side that is a multiple of {p.patch}")
        n, k = (h // p.patch) * (w // p.patch), c * p.patch * p.patch
        return Inferred((n, p.dim), f"({h}/{p.patch})·({w}/{p.patch}) = {n:,} patches of"
                                    f" {c}·{p.patch}·{p.patch} = {k:,} → {p.dim:,}")

    @staticmethod
    def _fan_in(p: PatchEmbedParams, ins: tuple[Shape, ...]) -> int:
        return ins[0][0] * p.patch * p.patch   # C·p² pixels per patch

    def params(self, p: PatchEmbedParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return self._fan_in(p, ins) * p.dim + (p.dim if p.bias else 0)   # proj weight (D, C, p, p) + bias

    def macs(self, p: PatchEmbedParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(out) * self._fan_in(p, ins)   # N·D outputs, C·p² each

    def saved(self, p: PatchEmbedParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # the conv saves its input and the weight (convolution_backward); flatten and transpose
        # are views that save nothing (measured, fp32 and bf16)
        return matmul_saved(prod(ins[0]), self._fan_in(p, ins) * p.dim, ac)

    def receptive(self, p: PatchEmbedParams, fs: tuple[rf.ReceptiveField, ...], ins: tuple[Shape, ...],
                  out: Shape, image: Shape) -> rf.ReceptiveField:
        k = (p.patch, p.patch)
        return rf.windowed(fs[0], k, k, (0, 0), (1, 1))   # each patch: its own p×p pixels

    def torch(self, p: PatchEmbedParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        kw = TorchLayer.given({"bias": True}, bias=p.bias)
        return TorchLayer("PatchEmbed", (ins[0][0], p.dim, p.patch), kw)   # proj: Conv2d(C, D, p, stride=p)

    def gpu_local(self, p: PatchEmbedParams, gpus: int) -> bool:
        return False

    def split(self, p: PatchEmbedParams, ins: tuple[Shape, ...]) -> Split:
        return Split(refuse="its output is a (N, D) sequence: D is not on axis 0")

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs
        if not isinstance(a.get("patch"), int):
            raise Unmapped("archviz's PatchEmbed")
        return self.layer(patch=a["patch"], dim=a["dim"], bias=bool(a["has_bias"]))

    def label(self, p: PatchEmbedParams) -> str:
        return f"{p.patch}×{p.patch} /{p.patch}, {p.dim}"

