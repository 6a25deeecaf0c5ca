"""What an op's torch lowering saves for backward: the vocabulary of the cost model
(:mod:`archviz.core.cost`); each op's ``saved`` rule speaks it."""

from __future__ import annotations

from ..record import record

# Element sizes of the dtypes that autograd saves; "fp32" is also what tf32 stores.
DTYPE_BYTES = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "int64": 8, "int32": 4, "bool": 1}


@record
class Autocast:
    """What a layer runs under: ``compute`` is the autocast dtype (None: plain fp32), ``ins`` the
    dtypes of its inputs as they arrive, ``device`` the torch device kind ("cpu" or "cuda": the
    dropout mask differs), ``grad_in`` whether its first input carries a gradient (the network
    input and what only parameter-free layers made of it do not: a matmul then keeps no weight)."""

    compute: str | None
    ins: tuple[str, ...]
    device: str = "cpu"
    grad_in: bool = True

    @property
    def low(self) -> str:
        """The dtype a conv or linear computes in: the autocast dtype, else fp32."""
        return self.compute or "fp32"


@record
class SavedTensor:
    """One tensor saved for backward. ``shares``: "input" (the storage of input ``index``),
    "output" (the layer's own output), or "" (a new storage only this op holds).
    ``per_image``: its elements scale with the batch (else a fixed count: a weight copy)."""

    what: str
    elements: int
    dtype: str
    shares: str = ""
    index: int = 0
    per_image: bool = True

    @property
    def bytes(self) -> int:
        return self.elements * DTYPE_BYTES[self.dtype]


@record
class Saved:
    """An op's saved-for-backward rule applied to one layer: what it saves, its output's dtype,
    whether the output is a view of input 0 (the same storage), and whether the rule is known."""

    tensors: tuple[SavedTensor, ...]
    out_dtype: str
    view: bool = False
    known: bool = True


@record
class Temporaries:
    """What an op's torch lowering holds besides its output and saved tensors, per image, in
    bytes (the allocator's view, archviz.core.cost_memory): ``forward``, the working buffers alive
    at its forward's worst moment; ``backward``, those of its backward, beside the input
    gradients. ``grad_alias``: the backward passes the output's gradient on as views (add,
    concat, flatten): no input gradient is allocated."""

    forward: int = 0
    backward: int = 0
    grad_alias: bool = False


def promote(dtypes: tuple[str, ...]) -> str:
    """torch's type promotion among float dtypes: fp32 wins over a half type."""
    return dtypes[0] if len(set(dtypes)) == 1 else "fp32"




def matmul_saved(inputs: int, weights: int, ac: Autocast, weight_always: bool = True) -> Saved:
    """Conv and linear: the input, shared unless autocast casts it (a new low-precision copy), and
    under autocast a low-precision copy of the weight (fp32: the weight is the parameter itself).
    ``weight_always``: convolution_backward keeps the weight whatever; addmm/mm keep it only for
    the input's gradient, so not where the input carries none (measured)."""
    low = ac.low
    shared = "input" if ac.ins[0] == low else ""
    tensors: tuple[SavedTensor, ...] = (SavedTensor("input", inputs, low, shared),)
    if ac.compute and (weight_always or ac.grad_in):
        tensors += (SavedTensor("weight copy", weights, low, per_image=False),)
    return Saved(tensors, low)


def input_saved_dtype(input_dtype: str) -> str:
    """The dtype the compiled module's input has, in this vocabulary: token ids keep theirs; any
    float input is fed as fp32 (the compiled module is fp32; autocast casts inside)."""
    return input_dtype if input_dtype in ("int64", "int32") else "fp32"
