"""Tiny translation models, generated offline, for the tests and the benchmark.

Nothing is downloaded: SentencePiece is trained on made-up text, CTranslate2 transformers get
random weights, and the MiniSBD sentence splitter is a one-node ONNX graph. All of it takes
about a second, once per test session (`session_models`).

Three of the models say a known English phrase whatever the input, so tests know the English
a second-pass match will see. Their decoders ignore the source and the previous tokens: token
embeddings and every sub-layer output are zero, so the decoder state at step t is its learned
position encoding e_t alone; the output projection maps e_t to the t-th piece of the phrase,
then to </s>. A fourth model keeps random weights (its output depends on the input) with the
</s> logit biased so sentences come out a few tokens long.

`NetworkGuard` is the tests' proof of offline work: an audit hook that refuses, and records,
every connection, DNS lookup and URL open while armed.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ARGOS_ENGLISH",
    "MADLAD_ENGLISH",
    "NLLB_ENGLISH",
    "NetworkBlockedError",
    "NetworkGuard",
    "TinyModels",
    "build",
    "random_transformer",
    "session_models",
    "train_sentencepiece",
]

ARGOS_ENGLISH = "suicide bomber"
"""What the tiny ar→en Argos package says, whatever it is given."""
NLLB_ENGLISH = "car bomb near Diyala"
"""What the tiny NLLB-style model says."""
MADLAD_ENGLISH = "Khanaqin market"
"""What the tiny MADLAD-style model says."""

_LETTERS = "ابتثجحخدذرسشصضطظعغفقكلمنهويەێۆڕڵ"
_KURMANJI = "abcdefghijklmnopqrstuvwxyzêîûç"
_ENGLISH = [
    "suicide",
    "bomber",
    "car",
    "bomb",
    "near",
    "Diyala",
    "Khanaqin",
    "market",
    "attack",
    "police",
    "said",
    "the",
]
NLLB_TOKENS = ("arb_Arab", "ckb_Arab", "kmr_Latn", "eng_Latn")
MADLAD_TOKENS = ("<2en>", "<2ar>", "<2ckb>", "<2ku>")


@dataclass(frozen=True)
class TinyModels:
    root: Path
    argos_ar: Path
    """`.argosmodel`, ar→en, says ARGOS_ENGLISH; carries a MiniSBD model."""
    argos_fa: Path
    """`.argosmodel`, fa→en, random weights; no MiniSBD model (punctuation splitting)."""
    nllb: Path
    """NLLB-200 style directory (ckb, kmr, ar → eng_Latn), says NLLB_ENGLISH."""
    madlad: Path
    """MADLAD-400 style directory (`<2en>`), says MADLAD_ENGLISH."""
    sentencepiece: Path
    """The SentencePiece model inside both Argos packages."""


def _corpus(path: Path, seed: int) -> Path:
    rng = random.Random(seed)
    lines = []
    for _ in range(400):
        words = [
            "".join(rng.choice(_LETTERS) for _ in range(rng.randint(2, 7)))
            for _ in range(rng.randint(3, 9))
        ]
        lines.append(" ".join(words) + rng.choice([".", "!", "؟", ""]))
        latin = ["".join(rng.choice(_KURMANJI) for _ in range(rng.randint(2, 6))) for _ in range(4)]
        lines.append(" ".join(latin + [rng.choice(_ENGLISH) for _ in range(6)]))
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def train_sentencepiece(prefix: Path, symbols: Sequence[str] = (), vocab_size: int = 260) -> Path:
    """A SentencePiece model over made-up Arabic-script, Kurmanji and English text (~3 KB)."""
    import sentencepiece as spm

    corpus = _corpus(prefix.with_suffix(".txt"), seed=len(symbols))
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        character_coverage=1.0,
        # The default NFKC rule table alone is 240 KB; identity keeps the model at ~3 KB.
        normalization_rule_name="identity",
        user_defined_symbols=list(symbols),
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


def _vocabulary(sentencepiece_model: Path) -> list[str]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sentencepiece_model))
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def random_transformer(
    out: Path,
    vocabulary: Sequence[str],
    *,
    d_model: int = 32,
    layers: int = 1,
    heads: int = 2,
    ffn: int = 64,
    eos_bias: float = 4.0,
    says: Sequence[str] | None = None,
    says_from: int = 0,
    decoder_start: str | None = None,
    seed: int = 0,
) -> Path:
    """A CTranslate2 Transformer (float32 on disk) with random weights, saved to `out`.

    `eos_bias` on the </s> logit sets the output length of random weights (0: never ends,
    4: a few tokens). `says` makes the decoder emit those pieces, then </s>, for any input;
    `says_from` is the decoder position of the first (1 when a target prefix comes first).
    """
    from ctranslate2.specs import model_spec, transformer_spec

    rng = np.random.default_rng(seed)
    size = len(vocabulary)
    spec = transformer_spec.TransformerSpec.from_config(
        num_layers=layers, num_heads=heads, pre_norm=True
    )
    if decoder_start is not None:
        spec.config.decoder_start_token = decoder_start
    # Scales found by trial: with them a random model's output depends on its input and,
    # with eos_bias 4, stays a few tokens long.
    embedding, scale = 0.3, 0.18

    def fill(layer: Any, name: str, value: Any) -> None:
        if value is not None:
            return
        attribute = name.rsplit("/", 1)[-1]
        if name.endswith("gamma"):
            array = np.ones(d_model)
        elif name.endswith("beta"):
            array = np.zeros(d_model)
        elif "embeddings" in name or "projection" in name:
            array = rng.normal(0, embedding, (size, d_model))
        elif "self_attention/linear_0" in name:
            array = rng.normal(0, scale, (3 * d_model, d_model))
        elif "attention/linear_1" in name and "self_attention" not in name:
            array = rng.normal(0, scale, (2 * d_model, d_model))
        elif "ffn/linear_0" in name:
            array = rng.normal(0, scale, (ffn, d_model))
        elif "ffn/linear_1" in name:
            array = rng.normal(0, scale, (d_model, ffn))
        else:
            array = rng.normal(0, scale, (d_model, d_model))
        setattr(layer, attribute, array.astype(np.float32))

    model_spec.visit_spec(spec, fill)
    decoder = spec.decoder
    bias = np.zeros(size, np.float32)
    eos = list(vocabulary).index("</s>")
    bias[eos] = eos_bias
    if says is not None:
        ids = [list(vocabulary).index(piece) for piece in says] + [eos]
        if len(set(ids)) != len(ids) or len(ids) + says_from > d_model:
            raise ValueError(f"cannot say {says!r}: pieces must differ and fit in d_model")
        decoder.embeddings.weight = np.zeros((size, d_model), np.float32)
        for layer in decoder.layer:
            for attention in (layer.self_attention, layer.attention):
                attention.linear[-1].weight = np.zeros_like(attention.linear[-1].weight)
            layer.ffn.linear_1.weight = np.zeros_like(layer.ffn.linear_1.weight)
        # Learned position encodings: one-hot rows, so after layer norm each position's
        # state points at its own direction; the projection row of its piece points there too.
        positions = np.zeros((256, d_model), np.float32)
        projection = np.zeros((size, d_model), np.float32)
        for step, token in enumerate(ids):
            positions[says_from + step, step] = 1.0
            direction = np.full(d_model, -1.0 / (d_model - 1), np.float32)
            direction[step] = 1.0
            projection[token] = 8 * direction
        # Every later position says </s> too, so beam search's other hypotheses end there.
        positions[says_from + len(ids) :, len(ids) - 1] = 1.0
        decoder.position_encodings.encodings = positions
        decoder.projection.weight = projection
        # Below the other tokens' 0 except at its own step: beam search must not find an
        # early </s> a better alternative than any other token, or it ends hypotheses early.
        bias[:] = 0
        bias[eos] = -1.0
    decoder.projection.bias = bias
    spec.register_source_vocabulary(list(vocabulary))
    spec.register_target_vocabulary(list(vocabulary))
    spec.validate()
    spec.optimize()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    spec.save(str(out))
    return out


def write_minisbd(path: Path) -> Path:
    """A MiniSBD model (~700 bytes): . ! ? ؟ ۔ end a sentence, nothing else does.

    One Gather node looks each character's class logits up in a table; the metadata is what
    `minisbd.SBDetect` reads (feature functions, character vocabulary, no lexicon).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    units = ["<PAD>", "<UNK>", " ", ".", "!", "?", "؟", "۔"]
    table = np.zeros((len(units), 5), np.float32)
    table[:, 0] = 1.0
    for index, unit in enumerate(units):
        if unit in ".!?؟۔":
            table[index] = [0, 0, 5, 0, 0]
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "units"], ["logits"], axis=0)],
        "sbd",
        [
            helper.make_tensor_value_info("units", TensorProto.INT64, ["B", "N"]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["B", "N", 1]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", "N", 5])],
        initializer=[numpy_helper.from_array(table, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    vocab = {
        "lang": "",
        "idx": 0,
        "cutoff": 0,
        "lower": False,
        "_unit2id": {unit: i for i, unit in enumerate(units)},
        "_id2unit": units,
    }
    metadata = {
        "config": json.dumps({"feat_funcs": ["space_before"], "max_seqlen": 1000}),
        "vocab": json.dumps(vocab),
        "lexicon": "null",
    }
    for key, value in metadata.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_argos_package(
    out: Path,
    from_code: str,
    to_code: str,
    sentencepiece_model: Path,
    model: Path,
    *,
    minisbd: bool,
    version: str = "1.0",
) -> Path:
    """A real `.argosmodel`: a zip of one folder with metadata.json, the model, the tokenizer."""
    name = f"translate-{from_code}_{to_code}"
    folder = out.parent / f".{name}-build"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / name).mkdir(parents=True)
    top = folder / name
    metadata = {
        "package_version": version,
        "argos_version": "1.9",
        "from_code": from_code,
        "from_name": from_code,
        "to_code": to_code,
        "to_name": to_code,
        "type": "translate",
        "links": [],
    }
    (top / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    shutil.copy(sentencepiece_model, top / "sentencepiece.model")
    shutil.copytree(model, top / "model")
    if minisbd:
        write_minisbd(top / "minisbd" / f"{from_code}.onnx")
    with zipfile.ZipFile(out, "w") as bundle:
        for path in sorted(top.rglob("*")):
            bundle.write(path, path.relative_to(folder))
    shutil.rmtree(folder)
    return out


def _ct2_directory(out: Path, sentencepiece_model: Path, tokenizer_name: str, **spec: Any) -> Path:
    random_transformer(out, _vocabulary(sentencepiece_model), **spec)
    shutil.copy(sentencepiece_model, out / tokenizer_name)
    return out


def build(root: Path) -> TinyModels:
    """Every tiny model, under `root` (about 0.5 s)."""
    import sentencepiece as spm

    root.mkdir(parents=True, exist_ok=True)
    plain = train_sentencepiece(root / "argos-sp")
    pieces = spm.SentencePieceProcessor(model_file=str(plain))
    vocabulary = _vocabulary(plain)

    says_argos = pieces.encode(ARGOS_ENGLISH, out_type=str)
    ar_model = random_transformer(root / "ar-model", vocabulary, says=says_argos)
    fa_model = random_transformer(root / "fa-model", vocabulary, eos_bias=4.0, seed=2)
    argos_ar = write_argos_package(
        root / "translate-ar_en.argosmodel", "ar", "en", plain, ar_model, minisbd=True
    )
    argos_fa = write_argos_package(
        root / "translate-fa_en.argosmodel", "fa", "en", plain, fa_model, minisbd=False
    )

    nllb_sp = train_sentencepiece(root / "nllb-sp", NLLB_TOKENS)
    says_nllb = spm.SentencePieceProcessor(model_file=str(nllb_sp)).encode(
        NLLB_ENGLISH, out_type=str
    )
    # NLLB decoding starts from </s>, then the forced eng_Latn: the phrase starts at step 1.
    nllb = _ct2_directory(
        root / "nllb-200-tiny",
        nllb_sp,
        "sentencepiece.bpe.model",
        says=says_nllb,
        says_from=1,
        decoder_start="</s>",
    )
    madlad_sp = train_sentencepiece(root / "madlad-sp", MADLAD_TOKENS)
    says_madlad = spm.SentencePieceProcessor(model_file=str(madlad_sp)).encode(
        MADLAD_ENGLISH, out_type=str
    )
    madlad = _ct2_directory(root / "madlad-400-tiny", madlad_sp, "spiece.model", says=says_madlad)
    return TinyModels(root, argos_ar, argos_fa, nllb, madlad, plain)


_BUILT: dict[Path, TinyModels] = {}


def session_models(tmp_path_factory: Any) -> TinyModels:
    """`build` once per test session, shared by every test module that asks."""
    base = Path(tmp_path_factory.getbasetemp())
    if base not in _BUILT:
        _BUILT[base] = build(tmp_path_factory.mktemp("tiny-models"))
    return _BUILT[base]


# Offline proof ---------------------------------------------------------------------------


class NetworkBlockedError(ConnectionRefusedError):
    """Raised into code that tried to reach the network while the guard was armed."""


_NETWORK_EVENTS = frozenset(
    {
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyname_ex",
        "socket.gethostbyaddr",
        "socket.sendto",
        "socket.sendmsg",
        "urllib.Request",
    }
)


class NetworkGuard:
    """While armed, every connection, DNS lookup and URL open raises and is recorded.

    An audit hook sees these events however deep in a library they happen; what code does
    with the exception (argostranslate swallows download errors) does not matter, because
    the test using the guard asserts `attempts` is empty at the end.
    """

    _installed = False
    _armed: NetworkGuard | None = None

    def __init__(self) -> None:
        self.attempts: list[str] = []
        if not NetworkGuard._installed:
            sys.addaudithook(NetworkGuard._hook)
            NetworkGuard._installed = True

    @staticmethod
    def _hook(event: str, args: tuple[Any, ...]) -> None:
        guard = NetworkGuard._armed
        if guard is not None and event in _NETWORK_EVENTS:
            guard.attempts.append(f"{event}{args!r}"[:200])
            raise NetworkBlockedError(f"network access in an offline test: {event} {args!r}")

    @contextmanager
    def armed(self) -> Iterator[NetworkGuard]:
        NetworkGuard._armed = self
        try:
            yield self
        finally:
            NetworkGuard._armed = None
