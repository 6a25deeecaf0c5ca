"""Reshapes: ``flatten``."""

from __future__ import annotations

from math import prod

from .registry import Inferred, NoParams, OpKind, Shape, TorchLayer, register
from .saved import Autocast, Saved, Temporaries
from .source import Mapped, Source, Unmapped


@register
class Flatten(OpKind):
    name, family = "flatten", "reshape"
    doc = "flatten a per-example tensor of any rank to a vector, (C, H, W) to (C·H·W,) (torch.nn.Flatten)"
    example = {"name": "flatten", "op": "flatten"}
    keeps_int = True      # a view: token ids stay token ids
    torch_modules = ("torch.nn.Flatten",)
    torch_functions = ("torch.flatten",)
    tensor_methods = ("flatten", "view", "reshape")
    onnx_types = ("Flatten", "Reshape")

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs
        if a["start_dim"] != 1 or a["end_dim"] != -1:
            raise Unmapped(f"start_dim={a['start_dim']}, end_dim={a['end_dim']} (only 1, -1)")
        return self.layer()

    def from_call(self, src: Source) -> Mapped:
        # torch.flatten(x, 1), x.view(n, -1), x.reshape(n, -1): judged by the shapes
        if len(src.ins) == 1 and src.out == (prod(src.ins[0]),):
            return self.layer() if len(src.ins[0]) > 1 else ()   # a vector kept a vector: an identity
        raise Unmapped(f"reshape {src.ins[0] if src.ins else ''} → {src.out} (only flattening to (N, F))")

    def from_onnx(self, src: Source) -> Mapped:
        if src.target == "Reshape":
            if src.out is not None and len(src.ins) == 1 and src.out == (prod(src.ins[0]),):
                return self.layer() if len(src.ins[0]) > 1 else ()
            shown = src.ins[0] if src.ins else ""
            raise Unmapped(f"reshape {shown} → {src.out} (only flattening to (N, -1))")
        if int(src.attrs.get("axis", 1)) != 1:
            raise Unmapped(f"axis={src.attrs['axis']} (only 1)")
        return self.layer() if len(src.ins[0]) > 1 else ()

    def infer(self, p: NoParams, ins: tuple[Shape, ...]) -> Inferred:
        shape = ins[0]
        return Inferred((prod(shape),), " × ".join(map(str, shape)) + f" = {prod(shape)}")

    def torch(self, p: NoParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("Flatten")

    def saved(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        return Saved((), ac.ins[0], view=True)  # a view of its input: no copy, nothing saved

    def temporaries(self, p: NoParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
                    lowering: str = "") -> Temporaries:
        return Temporaries(grad_alias=True)  # its gradient is a view of the output's
