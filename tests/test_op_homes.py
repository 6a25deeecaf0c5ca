"""One home per op (issue 20): the op's class names where it is imported from and how it splits;
the importers and the split code read the op and keep no table of their own."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from archviz.ops import OPS
from archviz.ops.source import TENSOR, Source, Unmapped
from archviz.runtime import mapping

ROOT = Path(__file__).resolve().parent.parent / "archviz"
RUNTIME = ROOT / "runtime"


def _installed(name: str) -> bool:
    """torch's own names always resolve; an optional package's (torchvision, timm) where installed."""
    import importlib.util

    return importlib.util.find_spec(name.split(".")[0]) is not None


def _names() -> list[tuple[str, str, str]]:
    return [(op.name, kind, n) for op in OPS.values()
            for kind, names in (("module", op.torch_modules), ("function", op.torch_functions),
                                ("method", op.tensor_methods), ("onnx", op.onnx_types)) for n in names]


@pytest.mark.parametrize(("op", "kind", "name"), _names())
def test_every_declared_name_dispatches_to_its_op(op: str, kind: str, name: str) -> None:
    if kind in ("module", "function") and mapping.resolvable(name) is None:
        pytest.skip(f"{name}: its library is not installed")   # transformers' classes, by name
    d = mapping.dispatch()
    if kind in ("module", "function") and not _installed(name):
        pytest.skip(f"{name.split('.')[0]} is not installed (its names are matched where it is)")
    if kind == "module":
        assert d.modules[mapping.resolve(name)] == (OPS[op], name)
    elif kind == "function":
        assert d.functions[mapping.resolve(name)] == (OPS[op], name)
    elif kind == "method":
        assert d.methods[name] is OPS[op]
    else:
        assert d.onnx[name] is OPS[op]


def test_declared_names_are_qualified_and_unique() -> None:
    seen: set[tuple[str, str]] = set()
    for _, kind, name in _names():
        assert (kind, name) not in seen, f"{name} is claimed twice"
        seen.add((kind, name))
        if kind in ("module", "function"):
            assert re.fullmatch(r"(torch|torchvision|timm|archviz|operator|transformers)(\.\w+)+", name), name


def _from_example(op: object, cls: type) -> object:
    """The module the op's own documented example compiles to, where it is of class ``cls``."""
    from test_ops import _example_spec

    import archviz

    name = op.example["name"]   # type: ignore[attr-defined]
    try:
        module = archviz.to_module(archviz.loads(_example_spec(op.name))).get_submodule(name)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - an example that does not compile (opaque) has no module
        return None
    return module if type(module) is cls else None


def _built(cls: type, name: str) -> object:
    """``cls()``, or None for another library's class that cannot be built without arguments."""
    try:
        return cls()
    except TypeError:
        if name.startswith("torch."):
            raise
        return None


def test_every_torch_module_of_an_op_maps_to_that_op() -> None:
    """Each declared module, built with torch's defaults where it can be, maps to its op."""
    import torch
    from torch import nn

    made = {nn.Conv2d: nn.Conv2d(4, 8, 3), nn.Linear: nn.Linear(4, 8),
            nn.LocalResponseNorm: nn.LocalResponseNorm(5), nn.MaxPool2d: nn.MaxPool2d(2),
            nn.AvgPool2d: nn.AvgPool2d(2), nn.AdaptiveAvgPool2d: nn.AdaptiveAvgPool2d(1),
            nn.BatchNorm2d: nn.BatchNorm2d(4), nn.BatchNorm1d: nn.BatchNorm1d(4), nn.Softmax: nn.Softmax(1),
            nn.LayerNorm: nn.LayerNorm(6), nn.Embedding: nn.Embedding(10, 4),
            nn.GroupNorm: nn.GroupNorm(2, 4), nn.InstanceNorm1d: nn.InstanceNorm1d(4),
            nn.InstanceNorm2d: nn.InstanceNorm2d(4), nn.InstanceNorm3d: nn.InstanceNorm3d(4),
            nn.Conv1d: nn.Conv1d(4, 8, 3), nn.Conv3d: nn.Conv3d(4, 8, 3),
            nn.ConvTranspose2d: nn.ConvTranspose2d(4, 8, 3),
            nn.MaxPool1d: nn.MaxPool1d(2), nn.MaxPool3d: nn.MaxPool3d(2), nn.AvgPool1d: nn.AvgPool1d(2),
            nn.AvgPool3d: nn.AvgPool3d(2), nn.AdaptiveMaxPool2d: nn.AdaptiveMaxPool2d(1),
            nn.AdaptiveMaxPool1d: nn.AdaptiveMaxPool1d(1), nn.AdaptiveAvgPool1d: nn.AdaptiveAvgPool1d(1),
            nn.AdaptiveMaxPool3d: nn.AdaptiveMaxPool3d(1), nn.AdaptiveAvgPool3d: nn.AdaptiveAvgPool3d(1),
            nn.Upsample: nn.Upsample(scale_factor=2),
            nn.UpsamplingNearest2d: nn.UpsamplingNearest2d(scale_factor=2),
            nn.UpsamplingBilinear2d: nn.UpsamplingBilinear2d(scale_factor=2),
            nn.PixelShuffle: nn.PixelShuffle(2),
            nn.PixelUnshuffle: nn.PixelUnshuffle(2), nn.RMSNorm: nn.RMSNorm(6),
            nn.MultiheadAttention: nn.MultiheadAttention(6, 2, batch_first=True)}
    made.update(_transformers_modules())
    for op in OPS.values():
        for name in filter(_installed, op.torch_modules):
            cls = mapping.resolvable(name)
            if cls is None:   # a library that is not installed here
                continue
            module = made.get(cls) or _from_example(op, cls) or _built(cls, name)
            if module is None:   # another library's class that needs its config: its own tests map it
                continue
            assert isinstance(module, torch.nn.Module)
            ins = ((4,),) if cls in (nn.Linear, nn.BatchNorm1d) else ((4, 6, 6),)
            out = (8,) if cls is nn.Linear else (4, 1, 1)
            layers = mapping.map_module(module, ins, out)
            assert layers and layers[0][0] == op.name, (name, layers)


def _transformers_modules() -> dict[type, object]:
    """transformers' Llama modules an op names, built from a small config (where it is installed)."""
    try:
        from transformers import LlamaConfig
        from transformers.models.llama import modeling_llama as llama
    except ImportError:
        return {}
    cfg = LlamaConfig(hidden_size=6, intermediate_size=8, num_attention_heads=2, num_key_value_heads=1)
    return {llama.LlamaRMSNorm: llama.LlamaRMSNorm(6), llama.LlamaMLP: llama.LlamaMLP(cfg),
            llama.LlamaAttention: llama.LlamaAttention(cfg, 0)}


def test_unsupported_variants_are_refused_by_the_op() -> None:
    from torch import nn

    with pytest.raises(Unmapped, match="padding_mode='reflect'"):
        mapping.map_module(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), ((3, 8, 8),), (4, 8, 8))
    with pytest.raises(Unmapped, match="asymmetric pads"):
        mapping.map_onnx(Source("MaxPool", {"kernel_shape": [2, 2], "pads": [0, 0, 1, 1]}, (TENSOR,),
                                ins=((3, 8, 8),), out=(3, 4, 4)))
    with pytest.raises(Unmapped):
        mapping.map_onnx(Source("Sin", {}, (TENSOR,), ins=((3,),), out=(3,)))


def test_onnx_and_torch_views_map_alike() -> None:
    """The same layer seen through torch and ONNX becomes the same settings."""
    import numpy as np
    from torch import nn

    torch_conv = mapping.map_module(nn.Conv2d(3, 8, 3, stride=2, padding=1), ((3, 8, 8),), (8, 4, 4))
    onnx_conv = mapping.map_onnx(Source("Conv", {"strides": [2, 2], "pads": [1, 1, 1, 1]},
                                        (TENSOR, np.zeros((8, 3, 3, 3)), np.zeros(8)), ins=((3, 8, 8),),
                                        out=(8, 4, 4)))
    assert torch_conv == onnx_conv
    lrn = mapping.map_onnx(Source("LRN", {"size": 5, "alpha": 5e-4, "beta": 0.75, "bias": 2.0}, (TENSOR,)))
    assert lrn == mapping.map_module(nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0), ((8, 4, 4),), (8, 4, 4))


def test_supported_lists_come_from_the_ops() -> None:
    modules, functions = mapping.supported_modules(), mapping.supported_functions()
    onnx = mapping.supported_onnx()
    for op in OPS.values():
        for name in filter(_installed, op.torch_modules):
            assert name.replace("torch.nn.", "nn.") in modules
        for name in filter(_installed, op.torch_functions):
            assert name.replace("torch.nn.functional.", "F.") in functions
        for name in op.onnx_types:
            assert name in onnx


def test_split_rules_live_on_the_ops() -> None:
    import archviz

    layers = {la.name: la for la in archviz.load("alexnet").layers}
    conv2 = layers["conv2"]
    rule = OPS["conv"].split(conv2.params, ((96, 27, 27),))
    assert rule.grouped and rule.even_inputs and rule.whole_input
    shard = OPS["conv"].shard(conv2.params, ((96, 27, 27),), 128, 2)
    assert shard is not None and shard.cls == "Conv2d" and shard.args == (48, 128)  # groups 2 → 1 per tower
    assert OPS["lrn"].split(layers["norm1"].params, ((96, 55, 55),)).window == 5
    assert OPS["relu"].shard(layers["relu1"].params, ((96, 55, 55),), 48, 2) is None


# --- no second home ---------------------------------------------------------------------------------

_TORCH_LAYER = re.compile(r"\bnn\.(Conv\w*|Linear|BatchNorm\w*|MaxPool\w*|AvgPool\w*|AdaptiveAvgPool\w*"
                          r"|ReLU6?|LocalResponseNorm|Dropout|Flatten|Softmax|Sigmoid|Tanh|GELU|SiLU|LeakyReLU"
                          r"|Hardswish|Hardsigmoid)\b")


def _code_lines(path: Path, leave_out: tuple[str, ...] = ()) -> list[tuple[int, str]]:
    """Lines of code, docstrings, comments and the functions named in ``leave_out`` left out."""
    tree = ast.parse(path.read_text())
    docs = {n.body[0].value.lineno for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    skip = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) and n.value.lineno in docs:
            skip.update(range(n.value.lineno, (n.value.end_lineno or n.value.lineno) + 1))
        if isinstance(n, ast.FunctionDef) and n.name in leave_out:
            skip.update(range(n.lineno, (n.end_lineno or n.lineno) + 1))
    lines = enumerate(path.read_text().splitlines(), 1)
    return [(i, line.split("#")[0]) for i, line in lines if i not in skip]


_PART = re.compile(r"^\s*self\.\w+ = nn\.\w+\(")   # archviz's own module holding a torch layer as a part


def test_no_file_outside_ops_names_a_torch_layer_class() -> None:
    """Mapping and splitting read the ops; only archviz's own LRN module subclasses torch's, its own
    attention-era modules (runtime/attention.py: attention, gated MLP) are built of torch's, and its
    other own modules may hold one as a part (PatchEmbed's ``proj``)."""
    own = {"attention.py"}
    found = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in sorted(ROOT.rglob("*.py"))
             if "ops" not in p.parts and not (p.parent == RUNTIME and p.name in own)
             for i, line in _code_lines(p) if _TORCH_LAYER.search(line)
             and not (p.name == "layers.py" and _PART.match(line))]
    assert found == ["runtime/lrn.py:89: class LRN(nn.LocalResponseNorm):"], found


def test_importers_keep_no_op_names() -> None:
    """No op name, torch function or ONNX type of an op is spelled in the importers' code (torch's
    written-out LRN and GroupNorm, node patterns that are no op's node type, are matched on their
    own)."""
    for module in ("importer.py", "onnx_import.py", "mapping.py", "parallel.py", "export.py"):
        patterns = ("_lrn_patterns", "_groupnorm_patterns")
        code = "\n".join(line for _, line in _code_lines(RUNTIME / module, patterns))
        for op in OPS.values():
            for name in (*op.torch_functions, *op.onnx_types):
                if name not in ("Add", "Identity"):   # a MatMul's bias Add; the identity (not an op)
                    assert not re.search(rf"[\"']{re.escape(name)}[\"']", code), (module, name)
            if op.name != "opaque" and module != "export.py":   # opaque: the importers' own fallback
                assert not re.search(rf"\bop == [\"']{op.name}[\"']", code), (module, op.name)


def _module_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            out.add("." * node.level + (node.module or ""))
            out.update("." * node.level + a.name for a in node.names if not node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_the_importers_do_not_import_each_other() -> None:
    fx_side = _module_level_imports(RUNTIME / "importer.py")
    onnx_side = _module_level_imports(RUNTIME / "onnx_import.py")
    assert ".mapping" in fx_side and ".mapping" in onnx_side
    assert not {".onnx_import", "archviz.runtime.onnx_import"} & fx_side
    assert not {".importer", "archviz.runtime.importer"} & onnx_side
    mapping_imports = _module_level_imports(RUNTIME / "mapping.py")
    assert not mapping_imports & {".importer", ".onnx_import", "torch"}, mapping_imports


def test_onnx_import_does_not_reference_the_fx_importer_at_all() -> None:
    assert "importer" not in "\n".join(line for _, line in _code_lines(RUNTIME / "onnx_import.py"))
