"""The card's inputs, its YAML header and the rendering of the template: pure, no file I/O.

``cifar10_fgs.publish.card`` gathers a :class:`CardInputs` from a dataset folder (manifest, shard layout,
statistics, results) and writes the text this package renders. The YAML header (``configs``,
``dataset_info`` with features, split sizes and byte counts) comes from the shards' layout; the body
is the Jinja template ``template.md.j2`` beside this file, filled with ``context.build_context(inputs)``. The
output is a pure function of the inputs (no clock, no absolute paths), so the same folder always
gives the same card. Of the library, ``context`` imports only ``formatting`` (no TensorFlow); the manifest and
statistics types are imported for type checking alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the types card.py passes in (never imported at run time)
    from cifar10_fgs.dataset.manifest import Manifest
    from cifar10_fgs.dataset.stats import SplitStatistics

TEMPLATE_NAME = "template.md.j2"
MARKER = "<!-- written by `cifar10-fgs card`"
SPLIT_ORDER = ("train", "test")
HUB_SOURCE = "uoft-cs/cifar10"
METHOD_NAMES = {"fgs": "iterative fast gradient sign", "onepixel": "one-pixel attack"}
ARCHITECTURES = {
    "efficientnetb0_cifar10": "EfficientNetB0",
    "efficientnetb0": "EfficientNetB0",
    "simple_deep_cnn": "simple deep CNN (Keras example, the paper's Fig. 2)",
}


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class SplitLayout:
    name: str
    files: tuple[str, ...]  # paths relative to the dataset folder, sorted
    rows: tuple[int, ...]  # rows per file
    num_examples: int
    num_bytes: int  # Arrow buffer bytes, as ``datasets`` counts them
    file_bytes: int  # bytes on disk

    @property
    def pattern(self) -> str:
        return f"data/{self.name}-*.arrow"


@dataclass(frozen=True)
class Layout:
    features: Any  # datasets.Features
    splits: dict[str, SplitLayout]

    @property
    def num_examples(self) -> int:
        return sum(s.num_examples for s in self.splits.values())

    @property
    def download_size(self) -> int:
        return sum(s.file_bytes for s in self.splits.values())

    @property
    def dataset_size(self) -> int:
        return sum(s.num_bytes for s in self.splits.values())


@dataclass(frozen=True)
class ResultSection:
    name: str  # file name under results/
    title: str
    markdown: str | None = None
    numbers: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    note: str | None = None


@dataclass(frozen=True)
class CardInputs:
    """Everything the card says, gathered by ``cifar10_fgs.publish.card``."""

    manifest: Manifest
    layout: Layout
    stats: dict[str, SplitStatistics]  # by split, in layout order
    results: tuple[ResultSection, ...]
    figures: dict[str, str]  # figure key -> path relative to the folder
    notes: tuple[str, ...]  # what the card could not show, and why
    repo_id: str | None
    folder_name: str  # the dataset folder's name, for the local loading example
    class_names: tuple[str, ...]
    full_split_sizes: dict[str, int]  # rows of each whole CIFAR-10 split
    flip_suffix: str  # how the library's architecture names mark a flip-averaged network
    shipped_model: tuple[str, str] | None = None  # (model, provenance JSON) paths an upload puts in the repo
    paper_comparison: str | None = None  # results/paper.md when the folder holds the paper comparison

    @property
    def method(self) -> str:
        return self.manifest.config.method.value


def ordered_splits(names) -> list[str]:
    names = list(names)
    return [s for s in SPLIT_ORDER if s in names] + sorted(s for s in names if s not in SPLIT_ORDER)


def size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def method_name(method: str) -> str:
    return METHOD_NAMES.get(method, method)


def architecture_name(manifest: Manifest, flip_suffix: str) -> str:
    """The source's architecture in words; ``flip_suffix`` marks a flip-averaged network in its name."""
    arch = str(manifest.source_model.architecture or "unknown model")
    network, flipped, _ = arch.partition(flip_suffix)
    name = ARCHITECTURES.get(network, network)
    return f"{name} (test-time flip averaging)" if flipped else name


def pretty_name(inputs: CardInputs) -> str:
    network = architecture_name(inputs.manifest, inputs.flip_suffix).split(" (")[0]
    return f"Adversarial CIFAR-10 ({method_name(inputs.method)} on {network})"


# --------------------------------------------------------------------------- YAML header


def build_card_data(inputs: CardInputs):
    """The card's YAML metadata as a ``DatasetCardData``; ``dataset_info`` is serialised by ``datasets`` itself."""
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from huggingface_hub import DatasetCardData

    layout = inputs.layout
    arch = str(inputs.manifest.source_model.architecture or "")
    tags = ["adversarial", "adversarial-examples", "adversarial-robustness", "cifar10"]
    tags += ["one-pixel-attack"] if inputs.method == "onepixel" else ["fgsm", "fast-gradient-sign"]
    if "efficientnet" in arch.lower():
        tags.append("efficientnet")
    data = DatasetCardData(
        pretty_name=pretty_name(inputs),
        license="unknown",
        task_categories=["image-classification"],
        task_ids=["multi-class-image-classification"],
        size_categories=[size_category(layout.num_examples)],
        source_datasets=[HUB_SOURCE],
        tags=tags,
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": s.name, "path": s.pattern} for s in layout.splits.values()],
            }
        ],
    )
    split_dict = SplitDict()
    for s in layout.splits.values():
        split_dict.add(SplitInfo(name=s.name, num_bytes=s.num_bytes, num_examples=s.num_examples))
    info = DatasetInfo(
        features=layout.features,
        splits=split_dict,
        download_size=layout.download_size,
        dataset_size=layout.dataset_size,
    )
    DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    return data


# --------------------------------------------------------------------------- markdown helpers


def md_escape(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(headers, rows, align=None) -> str:
    headers = [md_escape(h) for h in headers]
    align = align or ["---"] * len(headers)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(md_escape(c) for c in r) + " |")
    return "\n".join(lines)


def feature_type(feature) -> str:
    import datasets

    if isinstance(feature, datasets.Image):
        return "Image (PNG bytes)"
    if isinstance(feature, datasets.ClassLabel):
        return f"ClassLabel ({feature.num_classes} classes)"
    if isinstance(feature, datasets.Value):
        return feature.dtype
    return type(feature).__name__


# --------------------------------------------------------------------------- rendering


def template_text() -> str:
    return resources.files(__package__).joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")


def render(context: dict, card_data) -> str:
    """The README text: YAML header from ``card_data``, body from the template (undefined names are errors)."""
    import jinja2

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    text = env.from_string(template_text()).render(card_data=card_data.to_yaml(), **context)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip("\n") + "\n"


def render_card(context: dict, card_data):
    """A ``huggingface_hub.DatasetCard`` (its YAML is parsed back, so a malformed header fails here)."""
    from huggingface_hub import DatasetCard

    return DatasetCard(render(context, card_data))


def convention_text(record) -> str:
    """How the source model was fed, from ``source_model.input_convention`` (none: this project's convention)."""
    if not isinstance(record, dict):
        return "NHWC, pixels in [0, 255], logits out (this project's convention)"
    nums = lambda v: "[" + ", ".join(f"{x:g}" for x in v) + "]"  # noqa: E731
    text = f"{record.get('layout')}, pixels in [0, {record.get('scale', 255):g}]"
    if record.get("mean") is not None and record.get("std") is not None:
        text += f", then (x - mean {nums(record['mean'])}) / std {nums(record['std'])}"
    text += f", {record.get('output')} out"
    declared = record.get("declared_by")
    if isinstance(declared, dict):
        places = sorted(
            {(PurePath(str(v)).name or str(v)) for v in declared.values() if v not in ("default", "input shape")}
        )
        text += f" (declared by {', '.join(places)})" if places else " (this project's convention)"
    if record.get("output") == "probabilities" and record.get("logits"):
        text += f"; attacked on its logits: {record['logits']}"
    return text
