"""Embeddings: ``embedding`` (torch.nn.Embedding), a learned vector per integer token id;
``type_embedding`` (BERT's token-type, or segment, embedding with every token of one type)."""

from __future__ import annotations

from math import prod
from typing import Any

from .dtypes import FLOAT, is_integer
from .fields import Count, PosInt, Settings, param
from .registry import Inferred, OpError, OpKind, Shape, TorchLayer, fmt_dims, register
from .saved import Autocast, Saved, SavedTensor, Temporaries
from .source import Mapped, Source, Split, Unmapped


class EmbeddingParams(Settings):
    """The settings of ``embedding``."""
    vocab: int = param(PosInt(doc="vocabulary size: the ids run from 0 to vocab − 1"))
    dim: int = param(PosInt(doc="the length of the vector each id stands for"))
    padding_idx: int | None = param(Count(doc="an id whose row gets no gradient (torch's"
                                              " padding_idx; BERT's 0)"), None)


@register
class Embedding(OpKind):
    """out[..., :] = weight[id]: a row of the (vocab, dim) table per id; no arithmetic."""

    name, family = "embedding", "embedding"
    doc = "a learned vector per integer token id (torch.nn.Embedding): (S,) ids → (S, dim)"
    Params = EmbeddingParams
    example = {"name": "wte", "op": "embedding", "vocab": 1000, "dim": 64}
    example_input = ((16,), "int64")
    torch_modules = ("torch.nn.Embedding",)
    onnx_types = ("Gather",)
    onnx_weights = ("weight",)

    def out_dtype(self, p: EmbeddingParams, ins: tuple[str, ...]) -> str:
        if not is_integer(ins[0]):
            raise OpError(f"embedding needs integer token ids, got {ins[0]}",
                          hint="hint: give the input an integer dtype (input_dtype: int64 in the spec,"
                               " or --input-dtype int64)")
        return FLOAT

    def infer(self, p: EmbeddingParams, ins: tuple[Shape, ...]) -> Inferred:
        if p.padding_idx is not None and p.padding_idx >= p.vocab:
            raise OpError(f"padding_idx {p.padding_idx} is not an id below vocab {p.vocab:,}", "padding_idx")
        ids = ins[0]   # (*S) ids → (*S, dim)
        return Inferred((*ids, p.dim), f"{fmt_dims(ids)} ids → a row of {p.vocab:,}×{p.dim} each")

    def params(self, p: EmbeddingParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return p.vocab * p.dim  # weight (vocab, dim)

    def tied_weight(self, p: EmbeddingParams, ins: tuple[Shape, ...]) -> Shape | None:
        return (p.vocab, p.dim)

    def id_bound(self, p: EmbeddingParams) -> int:
        return p.vocab

    def saved(self, p: EmbeddingParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # embedding_backward scatters the output's gradient into the rows of the ids it read: it
        # saves the ids (the input itself); the output has the weight's dtype, fp32 (autocast
        # leaves embedding alone; measured with saved_tensors_hooks, fp32 and bf16)
        return Saved((SavedTensor("ids", prod(ins[0]), ac.ins[0], "input"),), "fp32")

    def torch(self, p: EmbeddingParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        kw = TorchLayer.given({"padding_idx": None}, padding_idx=p.padding_idx)
        return TorchLayer("Embedding", (p.vocab, p.dim), kw)

    def receptive(self, p: EmbeddingParams, fs: Any, ins: tuple[Shape, ...], out: Shape, image: Shape) -> Any:
        return fs[0]   # each position reads its own id

    def split(self, p: EmbeddingParams, ins: tuple[Shape, ...]) -> Split:
        return Split(refuse="its rows are ids, not channels (a vocabulary-parallel split is not drawn)")

    def from_module(self, src: Source) -> Mapped:
        a = src.attrs
        if a.get("max_norm") is not None or a.get("sparse"):
            raise Unmapped("max_norm or sparse gradients")
        return self.layer(vocab=a["num_embeddings"], dim=a["embedding_dim"], padding_idx=a.get("padding_idx"))

    def from_onnx(self, src: Source) -> Mapped:
        # Gather(data = the table, an initializer; indices = the ids), axis 0
        w = src.const(0)
        if w is None or w.ndim != 2 or int(src.attrs.get("axis", 0)) != 0:
            raise Unmapped("a Gather of ids from an initializer table, axis 0")
        return self.layer(vocab=int(w.shape[0]), dim=int(w.shape[1]))

    def label(self, p: EmbeddingParams) -> str:
        return f"{p.vocab:,} × {p.dim}"


class TypeEmbeddingParams(Settings):
    """The settings of ``type_embedding``."""
    types: int = param(PosInt(doc="rows of the table: the token types (BERT: 2, sentence A and B)"))
    type: int = param(Count(doc="the type of every token: the row added (Hugging Face's default"
                                " token_type_ids: 0)"), 0)


@register
class TypeEmbedding(OpKind):
    """out[s] = x[s] + table[type]: BERT's token-type (segment) embedding (Devlin et al. 2019, §3,
    Figure 2) where every token has one type, as Hugging Face's BertModel runs without
    ``token_type_ids`` (zeros). One row is added; the whole (types, D) table is a parameter."""

    name, family = "type_embedding", "embedding"
    doc = ("BERT's token-type (segment) embedding, every token of one type: x + table[type],"
           " a learned (types, D) table: (S, D) → (S, D)")
    Params = TypeEmbeddingParams
    example = {"name": "token_type", "op": "type_embedding", "types": 2}
    example_input = ((12, 8), "float32")
    ranks = (2,)
    torch_modules = ("archviz.runtime.layers.TypeEmbedding",)
    onnx_weights = ("weight",)   # the key of the table a call reads a row of (x + tte(zeros))

    def infer(self, p: TypeEmbeddingParams, ins: tuple[Shape, ...]) -> Inferred:
        if p.type >= p.types:
            raise OpError(f"type {p.type} is not a row of a table of {p.types} types", "type")
        d = ins[0][1]
        return Inferred(ins[0], f"+ row {p.type} of the {p.types}×{d} type table at every position")

    def params(self, p: TypeEmbeddingParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return p.types * ins[0][1]   # weight (types, D): every row a parameter, one of them read

    def work(self, p: TypeEmbeddingParams, ins: tuple[Shape, ...], out: Shape) -> int:
        return prod(out)   # one add per element

    def saved(self, p: TypeEmbeddingParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
              lowering: str = "") -> Saved:
        # x + weight[type]: add saves nothing, the row is a view of the parameter; the fp32 row
        # promotes a half x to fp32, as pos_embedding's rows do
        return Saved((), "fp32")

    def temporaries(self, p: TypeEmbeddingParams, ins: tuple[Shape, ...], out: Shape, ac: Autocast, *,
                    lowering: str = "") -> Temporaries:
        return Temporaries(grad_alias=True)   # AddBackward passes the gradient on to x

    def torch(self, p: TypeEmbeddingParams, ins: tuple[Shape, ...], *, lowering: str = "") -> TorchLayer:
        return TorchLayer("TypeEmbedding", (p.types, ins[0][1]), TorchLayer.given({"type": 0}, type=p.type))

    def split(self, p: TypeEmbeddingParams, ins: tuple[Shape, ...]) -> Split:
        return Split(refuse="its output is a (S, D) sequence: D is not on axis 0")

    def from_module(self, src: Source) -> Mapped:
        """archviz's own TypeEmbedding (a compiled spec imports back); BERT's ``token_type_embeddings``
        of constant ids is an add of a row, mapped by ``add``."""
        return self.layer(types=src.attrs["types"], type=src.attrs["type"])

    def label(self, p: TypeEmbeddingParams) -> str:
        return f"type {p.type} of {p.types}"
