"""Normalisation: ``lrn`` (the AlexNet paper's local response normalisation), ``batchnorm``,
``layernorm``."""

from __future__ import annotations

from math import prod
from typing import Any

from .fields import BoolField, FloatField, PosInt, Settings, ShapeField, param
from .registry import Inferred, OpError, OpKind, Shape, TorchLayer, fmt_dims, fmt_shape, register
from .saved import Autocast, Saved, SavedTensor, Temporaries
from .source import Mapped, Source, Split, Unmapped, Weight

# --- normalisation ------------------------------------------------------------------------------


class LRNParams(Settings):
    """The AlexNet paper's formula (section 3.3), channel i of the output at one position:

        b_i = a_i / (k + α · Σ_j a_j²)^β,   j over the ``size`` = n channels around i

    ``alpha`` is that α (as the paper and TensorFlow write it). torch's ``LocalResponseNorm``,
    Caffe's and ONNX's LRN divide their alpha by n, so they are given α·n (docs/spec-format.md).
    """

    size: int = param(PosInt(doc="n, channels in the window"))
    alpha: float = param(FloatField(doc="α of the paper's formula, not divided by n (torch's alpha = α·n)"),
                         1e-4)
    beta: float = param(FloatField(doc="β, the exponent"), 0.75)
    k: float = param(FloatField(doc="k, the additive constant"), 1.0)

    @property
    def torch_alpha(self) -> float:
        """The alpha of torch's LocalResponseNorm (Caffe, ONNX): it divides by n, so α·n."""
        return self.alpha * self.size


@register
class LRN(OpKind):
    name, family = "lrn", "norm"
    doc = "local response normalisation across channels (torch.nn.LocalResponseNorm)"
    Params = LRNParams
    ranks = (3,)          # across channels of a (C, H, W) map
    example = {"name": "norm1", "op": "lrn", "size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2}
    # "fast": archviz's LRN module (archviz/runtime/lrn.py), the default; "torch":
    # nn.LocalResponseNorm as torch runs it (what an imported module with one uses)
    lowerings = ("fast", "torch")
    torch_modules = ("torch.nn.LocalResponseNorm",)
    onnx_types = ("LRN",)

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs   # torch divides its alpha by n: the paper's α = alpha / n
        # the module runs torch's implementation: the layer says so, so compile and cost follow it
        return self.layer(size=a["size"], alpha=a["alpha"] / a["size"], beta=a["beta"], k=a["k"],
                          lowering="torch")

    def from_onnx(self, src: Source) -> Mapped:
        a = src.attrs   # ONNX divides its alpha by n, as torch does
        size = int(a["size"])
        return self.layer(size=size, alpha=float(a.get("alpha", 1e-4)) / size,
                          beta=float(a.get("beta", 0.75)), k=float(a.get("bias", 1.0)), lowering="torch")

    def split(self, p: LRNParams, ins: tuple[Shape, ...]) -> Split:
        # the window reads size // 2 channels before and (size - 1) // 2 after each channel
        return Split(kind="lrn", window=p.size)

    def torch(self, p: LRNParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        # torch computes a / (k + (alpha/n)·Σa²)^β: the paper's α is passed as alpha = α·n.
        # "LRN" is archviz's subclass of LocalResponseNorm (same arguments, same maths, fewer
        # kernels and saved tensors: archviz/runtime/lrn.py); the "torch" lowering keeps torch's.
        cls = "LocalResponseNorm" if lowering == "torch" else "LRN"
        return TorchLayer(cls, (p.size,), (("alpha", p.torch_alpha), ("beta", p.beta), ("k", p.k)))

    def saved(self, p: LRNParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        n, rest = prod(ins[0]), prod(ins[0][1:])
        if (lowering or self.lowerings[0]) == "fast":
            # archviz's LRNFunction saves its input and the denominator k + α·Σa², in fp32; the
            # output keeps the input's dtype (a half input is computed in fp32 inside)
            return Saved((SavedTensor("input", n, ac.ins[0], "input"),
                          SavedTensor("denominator", n, "fp32")), ac.ins[0])
        # F.local_response_norm: mul(a, a) saves a; avg_pool3d saves the squares padded to
        # C + n − 1 channels; pow saves its base and its result; div saves a and that result.
        # CPU autocast runs avg_pool3d in fp32, so everything after it is fp32.
        low = "fp32" if ac.compute else ac.ins[0]
        return Saved((SavedTensor("input", n, ac.ins[0], "input"),
                      SavedTensor("padded squares", (ins[0][0] + p.size - 1) * rest, low),
                      SavedTensor("pow base", n, low), SavedTensor("divisor", n, low)), low)

    def temporaries(self, p: LRNParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
                    lowering: str = "") -> Temporaries:
        # archviz's LRNFunction (archviz/runtime/lrn.py) computes in fp32, one input-sized fp32
        # tensor per elementwise step. Forward: the squares (or d^-beta) beside d and the output;
        # a half input adds its fp32 copy and the fp32 output before the cast. Backward: d^-beta,
        # the window sum, g*d^-beta and two partial products (and a half input's fp32 copies of a
        # and g) beside the input gradient.
        n = prod(ins[0])   # bytes below: fp32 tensors are 4n, the gradient's half copy 2n
        if (lowering or self.lowerings[0]) != "fast":   # torch's lowering: not measured yet
            return Temporaries()
        half = ac.ins[0] != "fp32"
        return Temporaries(forward=n * (12 if half else 4), backward=n * (26 if half else 16))

    def work(self, p: LRNParams, ins: tuple[Shape, ...], out: Shape) -> int:
        # square, window sum (n adds), scale, add k, pow, divide per element
        return prod(ins[0]) * (p.size + 5)

    def reference(self, p: LRNParams, a: Any) -> Any:
        # b_i = a_i / (k + α·Σ_j a_j²)^β, j from i − ⌊n/2⌋ to i + ⌊(n−1)/2⌋ clipped to the channels
        # (the paper's n/2 each side for odd n; torch's window for even n)
        out = a.clone()
        c = a.shape[1]
        for i in range(c):
            lo, hi = max(0, i - p.size // 2), min(c - 1, i + (p.size - 1) // 2)
            out[:, i] = a[:, i] / (p.k + p.alpha * (a[:, lo:hi + 1] ** 2).sum(dim=1)) ** p.beta
        return out

    def label(self, p: LRNParams) -> str:
        return f"n={p.size}, k={p.k:g}, α={p.alpha:g}"


_BATCHNORM = {1: "BatchNorm1d", 2: "BatchNorm1d", 3: "BatchNorm2d", 4: "BatchNorm3d"}


class BatchNormParams(Settings):
    """The settings of ``batchnorm``."""
    eps: float = param(FloatField(lo=0.0), 1e-5)
    momentum: float = param(FloatField(lo=0.0), 0.1)
    affine: bool = param(BoolField(), True)


@register
class BatchNorm(OpKind):
    name, family = "batchnorm", "norm"
    doc = ("batch normalisation over channels, axis 0 (BatchNorm1d on (C,) or (C, L), BatchNorm2d on"
           " (C, H, W), BatchNorm3d on (C, D, H, W))")
    Params = BatchNormParams
    ranks = (1, 2, 3, 4)
    rank_text = "a (C,), (C, L), (C, H, W) or (C, D, H, W)"
    example = {"name": "bn1", "op": "batchnorm"}
    torch_modules = ("torch.nn.BatchNorm2d", "torch.nn.BatchNorm1d")
    onnx_types = ("BatchNormalization",)
    onnx_weights = ("weight", "bias", "running_mean", "running_var")

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs
        if a["momentum"] is None or not a["track_running_stats"]:
            raise Unmapped("momentum=None or no running statistics")
        return self.layer(eps=a["eps"], momentum=a["momentum"], affine=a["affine"])

    def from_onnx(self, src: Source) -> Mapped:
        a = src.attrs
        if any(src.outputs[1:]):
            raise Unmapped("training mode (running statistics as outputs)")
        # ONNX's momentum weighs the running statistic, torch's the batch's
        momentum = round(1.0 - float(a.get("momentum", 0.9)), 12)
        return self.layer(eps=float(a.get("epsilon", 1e-5)), momentum=momentum, affine=True)

    def shard(self, p: BatchNormParams, ins: tuple[Shape, ...], rows: int, towers: int) -> TorchLayer:
        return self.torch(p, ((rows, *ins[0][1:]),))   # weight, bias, running stats: (rows,)

    def params(self, p: BatchNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * ins[0][0] if p.affine else 0  # weight (C,) + bias (C,)

    def buffers(self, p: BatchNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 2 * ins[0][0] + 1  # running_mean, running_var (C,) + num_batches_tracked

    def torch(self, p: BatchNormParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        cls = _BATCHNORM[len(ins[0])]  # channels on axis 0: (C,) (C, L) | (C, H, W) | (C, D, H, W)
        kw = TorchLayer.given({"eps": 1e-5, "momentum": 0.1, "affine": True},
                              eps=p.eps, momentum=p.momentum, affine=p.affine)
        return TorchLayer(cls, (ins[0][0],), kw)

    def buffer_bytes(self, p: BatchNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 4 * 2 * ins[0][0] + 8  # fp32 running mean and var, int64 num_batches_tracked

    def saved(self, p: BatchNormParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # native_batch_norm saves the input, the running stats and weight (buffers and params:
        # not counted again) and the batch's mean and 1/std per channel, fp32 even under autocast
        c = ins[0][0]
        return Saved((SavedTensor("input", prod(ins[0]), ac.ins[0], "input"),
                      SavedTensor("mean", c, "fp32", per_image=False),
                      SavedTensor("invstd", c, "fp32", per_image=False)), ac.ins[0])

    def work(self, p: BatchNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 4 * prod(ins[0])  # statistics (2) and the affine normalisation (2) per element


# --- layer normalisation (Ba, Kiros & Hinton 2016; every transformer block) -------------------------

class LayerNormParams(Settings):
    """The settings of ``layernorm``."""
    normalized: Shape | None = param(ShapeField(doc="the trailing dims normalised together (torch's"
                                                    " normalized_shape); default: the last dim"), None)
    eps: float = param(FloatField(lo=0.0, doc="ε added to the variance"), 1e-5)
    affine: bool = param(BoolField(doc="a learned scale γ per normalised element"), True)
    bias: bool = param(BoolField(doc="and a learned shift β (with affine)"), True)


@register
class LayerNorm(OpKind):
    """y = (x − mean) / √(var + ε) · γ + β, mean and (biased) variance over the trailing
    ``normalized`` dims of each position (torch.nn.LayerNorm)."""

    name, family = "layernorm", "norm"
    doc = ("layer normalisation over the trailing dims of each position (torch.nn.LayerNorm):"
           " (S, D) normalised over D")
    Params = LayerNormParams
    example = {"name": "ln_1", "op": "layernorm"}
    torch_modules = ("torch.nn.LayerNorm",)
    torch_functions = ("torch.nn.functional.layer_norm",)
    onnx_types = ("LayerNormalization",)
    onnx_weights = ("weight", "bias")

    @staticmethod
    def dims(p: LayerNormParams, shape: Shape) -> Shape:
        """The normalised trailing dims: ``normalized``, else the last dim of ``shape``."""
        return p.normalized if p.normalized is not None else shape[-1:]

    def infer(self, p: LayerNormParams, ins: tuple[Shape, ...]) -> Inferred:
        shape, norm = ins[0], self.dims(p, ins[0])
        if len(norm) > len(shape) or tuple(shape[len(shape) - len(norm):]) != tuple(norm):
            raise OpError(f"normalized {fmt_shape(norm)} is not the trailing dims of the input"
                          f" {fmt_shape(shape)}", "normalized")
        lead = prod(shape[:len(shape) - len(norm)])
        # each of `lead` positions: its prod(norm) elements share one mean and variance
        return Inferred(shape, f"normalised over {fmt_dims(norm)} = {prod(norm):,}, for each of {lead:,}")

    def params(self, p: LayerNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        # weight γ and bias β, each of the normalised shape
        n = prod(self.dims(p, ins[0]))
        return (n + (n if p.bias else 0)) if p.affine else 0

    def work(self, p: LayerNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 5 * prod(ins[0])  # mean, variance (2), normalise, scale and shift per element

    def saved(self, p: LayerNormParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # native_layer_norm saves its input, the weight and bias (parameters: counted as such) and
        # the mean and 1/std of each position, fp32 whatever the input (measured with
        # saved_tensors_hooks on the CPU, fp32 and bf16). CUDA autocast runs layer_norm in fp32:
        # a half input is saved as a new fp32 copy and the output is fp32 (autocast's op list).
        n, lead = prod(ins[0]), prod(ins[0]) // prod(self.dims(p, ins[0]))
        stats = (SavedTensor("mean", lead, "fp32"), SavedTensor("rstd", lead, "fp32"))
        if ac.device == "cuda" and ac.compute and ac.ins[0] != "fp32":
            return Saved((SavedTensor("input (fp32 copy)", n, "fp32"), *stats), "fp32")
        return Saved((SavedTensor("input", n, ac.ins[0], "input"), *stats), ac.ins[0])

    def torch(self, p: LayerNormParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        kw = TorchLayer.given({"eps": 1e-5, "elementwise_affine": True, "bias": True},
                              eps=p.eps, elementwise_affine=p.affine, bias=p.bias)
        return TorchLayer("LayerNorm", (list(self.dims(p, ins[0])),), kw)

    def gpu_local(self, p: LayerNormParams, gpus: int) -> bool:
        return p.normalized is None or len(p.normalized) == 1   # each position (row) on its own GPU

    def split(self, p: LayerNormParams, ins: tuple[Shape, ...]) -> Split:
        if len(self.dims(p, ins[0])) >= len(ins[0]):
            return Split(refuse="it normalises over every channel of its input")
        return Split()

    def shard(self, p: LayerNormParams, ins: tuple[Shape, ...], rows: int, towers: int) -> TorchLayer:
        return self.torch(p, ((rows, *ins[0][1:]),))   # γ and β are of the trailing dims: whole per tower

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs
        return self.layer(normalized=tuple(a["normalized_shape"]), eps=a["eps"],
                          affine=bool(a["elementwise_affine"]), bias=a.get("bias") is not None)

    def from_call(self, src: Source) -> Mapped:
        # F.layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5): weights that are
        # the model's parameters (a Weight: torchvision's LayerNorm2d passes self.weight) become
        # the layer's own (the importer maps their keys); computed tensors do not map
        normalized = tuple(src.arg(1, "normalized_shape"))
        w, b = src.arg(2, "weight"), src.arg(3, "bias")
        if (w is None and b is not None) or any(
                v is not None and (not isinstance(v, Weight) or v.shape != normalized) for v in (w, b)):
            raise Unmapped("F.layer_norm with weight or bias tensors that are not the model's parameters"
                           " of the normalised shape (use nn.LayerNorm)")
        return self.layer(normalized=normalized, eps=float(src.arg(4, "eps", 1e-5)), affine=w is not None,
                          bias=b is not None)

    def from_onnx(self, src: Source) -> Mapped:
        a = src.attrs
        rank = len(src.ins[0]) + 1 if src.ins else 0   # ONNX axes count the batch
        axis = int(a.get("axis", -1))
        first = axis if axis >= 0 else rank + axis
        if not src.ins or not 1 <= first < rank or any(src.outputs[1:]):
            raise Unmapped(f"axis={axis} over the batch, or mean/rstd outputs used")
        w = src.const(1)
        if w is None:
            raise Unmapped("a LayerNormalization whose scale is an initializer")
        return self.layer(normalized=tuple(src.ins[0][first - 1:]), eps=float(a.get("epsilon", 1e-5)),
                          affine=True, bias=src.given(2))

    def label(self, p: LayerNormParams) -> str:
        return f"over {fmt_dims(p.normalized)}" if p.normalized is not None else "last dim"


# --- RMS normalisation (Zhang & Sennrich 2019; Llama, T5) ------------------------------------------

class RMSNormParams(Settings):
    """The settings of ``rmsnorm``."""
    normalized: Shape | None = param(ShapeField(doc="the trailing dims normalised together; default: the"
                                                    " last dim"), None)
    eps: float | None = param(FloatField(lo=0.0, doc="ε added to the mean square; default: torch's,"
                                                     " the input dtype's machine epsilon"), None)
    affine: bool = param(BoolField(doc="a learned scale γ per normalised element"), True)


@register
class RMSNorm(OpKind):
    """y = x / √(mean(x²) + ε) · γ over the trailing ``normalized`` dims of each position
    (torch.nn.RMSNorm; Hugging Face's LlamaRMSNorm, which computes in fp32)."""

    name, family = "rmsnorm", "norm"
    doc = "root-mean-square normalisation over the trailing dims (torch.nn.RMSNorm; Llama, T5)"
    Params = RMSNormParams
    example = {"name": "input_layernorm", "op": "rmsnorm", "eps": 1e-5}
    # transformers' RMSNorms: Llama's code (weight, variance_epsilon, computed in fp32), T5's the same
    torch_modules = ("torch.nn.RMSNorm", "transformers.models.t5.modeling_t5.T5LayerNorm",
                     *(f"transformers.models.{m}.modeling_{m}.{c}RMSNorm" for m, c in (
                         ("llama", "Llama"), ("mistral", "Mistral"), ("qwen2", "Qwen2"), ("phi3", "Phi3"))))
    torch_functions = ("torch.nn.functional.rms_norm",)
    onnx_types = ("RMSNormalization",)   # opset 23; below it, torch.onnx writes it out (a pattern)
    onnx_weights = ("weight",)

    @staticmethod
    def dims(p: RMSNormParams, shape: Shape) -> Shape:
        """The normalised trailing dims: ``normalized``, else the last dim of ``shape``."""
        return p.normalized if p.normalized is not None else shape[-1:]

    def infer(self, p: RMSNormParams, ins: tuple[Shape, ...]) -> Inferred:
        return LayerNorm().infer(LayerNormParams(normalized=p.normalized), ins)   # the same trailing dims

    def params(self, p: RMSNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(self.dims(p, ins[0])) if p.affine else 0  # γ of the normalised shape, no β

    def work(self, p: RMSNormParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return 4 * prod(ins[0])  # square, mean, normalise, scale per element

    def saved(self, p: RMSNormParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # torch.rms_norm (measured with saved_tensors_hooks on the CPU, fp32 and bf16): where the input
        # carries a gradient, the input (a half input as an fp32 copy: computed in fp32) and 1/rms per
        # position, fp32; with γ, the normalised x/rms too (γ's gradient), fp32
        n = prod(ins[0])
        lead = n // prod(self.dims(p, ins[0]))
        tensors: tuple[SavedTensor, ...] = ()
        if ac.grad_in:
            x = SavedTensor("input", n, "fp32", "input") if ac.ins[0] == "fp32" else \
                SavedTensor("input (fp32 copy)", n, "fp32")
            tensors += (x, SavedTensor("rstd", lead, "fp32"))
        if p.affine:
            tensors += (SavedTensor("normalised input", n, "fp32"),)
        return Saved(tensors, ac.ins[0])

    def torch(self, p: RMSNormParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        kw = TorchLayer.given({"eps": None, "elementwise_affine": True}, eps=p.eps,
                              elementwise_affine=p.affine)
        return TorchLayer("RMSNorm", (list(self.dims(p, ins[0])),), kw)

    def gpu_local(self, p: RMSNormParams, gpus: int) -> bool:
        return p.normalized is None or len(p.normalized) == 1

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs
        if "variance_epsilon" in a:   # LlamaRMSNorm(hidden_size, eps): weight (D,), always affine
            return self.layer(normalized=tuple(a["weight"]), eps=float(a["variance_epsilon"]))
        eps = a["eps"]
        return self.layer(normalized=tuple(a["normalized_shape"]), eps=None if eps is None else float(eps),
                          affine=bool(a["elementwise_affine"]))

    def from_call(self, src: Source) -> Mapped:
        if src.arg(2, "weight") is not None:
            raise Unmapped("F.rms_norm with a weight tensor (use nn.RMSNorm)")
        eps = src.arg(3, "eps")
        return self.layer(normalized=tuple(src.arg(1, "normalized_shape")),
                          eps=None if eps is None else float(eps), affine=False)

    def from_onnx(self, src: Source) -> Mapped:
        """``RMSNormalization(x, scale)`` over the dims from ``axis`` on; ε float32's own (torch's
        default for a float32 input) is written as the default."""
        rank = len(src.ins[0]) + 1
        axis = int(src.attrs.get("axis", -1)) % rank
        dims, scale = tuple(src.ins[0][axis - 1:]), src.const(1)
        if axis == 0 or scale is None or tuple(scale.shape) != dims:
            raise Unmapped("over the dims after the batch, with a scale initializer of their shape")
        eps = float(src.attrs.get("epsilon", 1e-5))
        return self.layer(normalized=dims if len(dims) > 1 else None, eps=None if is_f32_eps(eps) else eps)

    def label(self, p: RMSNormParams) -> str:
        return f"over {fmt_dims(p.normalized)}" if p.normalized is not None else "last dim"


def is_f32_eps(eps: float) -> bool:
    """``eps`` is float32's machine epsilon 2⁻²³ (to the 7 digits an ONNX attribute is read to)."""
    return abs(eps - 2.0 ** -23) < 1e-13
