"""An ONNX graph as the importer reads it: its constants (initializers, ``Constant`` nodes), the
value shapes and types ``onnx.shape_inference`` gives with the input's size fixed, and who
produces and reads each value (:class:`Graph`); a node's attributes (:func:`attrs`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .mapping import ImportFailed

Shape = tuple[int, ...]


class Pattern(NamedTuple):
    """Several nodes read as layers: their input, the layers, the weight initializers (named by
    the made op's ``onnx_weights`` in order, or by ``keys``: initializer → state-dict key under the
    layer), those stored transposed to torch's layout, and a layer name where the weights give one."""

    x: str
    layers: Any
    weights: list[str]
    keys: Mapping[str, str] | None = None
    transposed: frozenset[str] = frozenset()
    name: str | None = None


def attrs(node: Any) -> dict[str, Any]:
    """A node's attributes; floats (float32 in the file) rounded to the 7 digits float32 holds."""
    import onnx

    out = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return {k: float(f"{v:.7g}") if isinstance(v, float) else v for k, v in out.items()}


class Graph:
    """The model's values: constants (initializers, Constant nodes), inferred shapes and types."""

    def __init__(self, model: Any, input_shape: Shape | None) -> None:
        import onnx
        from onnx import numpy_helper, shape_inference

        self.model = model
        g = model.graph
        self.consts: dict[str, Any] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        for n in g.node:
            if n.op_type == "Constant" and "value" in attrs(n):
                self.consts[n.output[0]] = numpy_helper.to_array(attrs(n)["value"])
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise ImportFailed(f"the graph has {len(inputs)} inputs ({', '.join(i.name for i in inputs)});"
                               " only one image input can be imported")
        self.input = inputs[0].name
        # token ids come in as INT64 / INT32 (TensorProto 7 / 6); every other input is float
        self.dtype = {7: "int64", 6: "int32"}.get(inputs[0].type.tensor_type.elem_type, "float32")
        dims = inputs[0].type.tensor_type.shape.dim
        given = tuple(d.dim_value if d.HasField("dim_value") else 0 for d in dims)
        self.batch = given[0] if given and given[0] > 0 else 2
        if input_shape is not None:
            self.shape = tuple(input_shape)
        elif len(given) >= 2 and all(given[1:]):
            self.shape = tuple(int(d) for d in given[1:])
        else:
            raise ImportFailed(f"input {self.input}: its size is not fixed in the file ({given});"
                               " give it with --input CxHxW")
        fixed = onnx.ModelProto()
        fixed.CopyFrom(model)
        for i in fixed.graph.input:
            if i.name == self.input:
                shape = i.type.tensor_type.shape
                del shape.dim[:]
                for d in (self.batch, *self.shape):
                    shape.dim.add().dim_value = d
        try:
            inferred = shape_inference.infer_shapes(fixed, strict_mode=False)
        except Exception as exc:  # noqa: BLE001 - a broken graph
            raise ImportFailed(f"onnx shape inference fails on this graph: {exc}") from None
        self.shapes: dict[str, Shape | None] = {}
        self.types: dict[str, int] = {}
        for vi in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
            tt = vi.type.tensor_type
            self.types[vi.name] = tt.elem_type
            if tt.HasField("shape"):
                ds = [d.dim_value if d.HasField("dim_value") else 0 for d in tt.shape.dim]
                self.shapes[vi.name] = tuple(ds[1:]) if ds and all(ds) else None
        self.outputs = {o.name for o in g.output}
        self.producer = {o: n for n in g.node for o in n.output}
        self.readers: dict[str, list[Any]] = {}
        for n in g.node:
            for i in n.input:
                self.readers.setdefault(i, []).append(n)

    def const(self, name: str) -> Any:
        return self.consts.get(name)

    def scalar(self, name: str) -> float | None:
        v = self.consts.get(name)
        return float(f"{float(v.reshape(-1)[0]):.7g}") if v is not None and v.size == 1 else None

    def is_float(self, name: str) -> bool:
        from onnx import TensorProto

        return self.types.get(name, TensorProto.FLOAT) in (TensorProto.FLOAT, TensorProto.DOUBLE,
                                                           TensorProto.FLOAT16, TensorProto.BFLOAT16)
