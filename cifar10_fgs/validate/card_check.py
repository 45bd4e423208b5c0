"""Does the dataset card describe the shards? Its YAML ``dataset_info`` against the stored columns and rows.

Shared by ``validate`` (the ``card`` check) and ``upload`` (which refuses a card that would make the
hub's ``load_dataset`` fail).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cifar10_fgs.dataset.shards import CARD


@dataclass(frozen=True)
class CardProblem:
    message: str
    split: str | None = None


@dataclass(frozen=True)
class CardCheck:
    skipped: str | None  # why the card could not be checked (no card, no front matter, no dataset_info)
    checked: int  # items compared
    problems: tuple[CardProblem, ...]

    @property
    def ok(self) -> bool:
        return self.skipped is None and not self.problems


def front_matter(text: str) -> str | None:
    """The YAML between a leading ``---`` line and the next ``---`` line, or None."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            return "\n".join(lines[1:i])
    return None


def _dataset_info(text: str):
    """(dataset_info mapping, None) or (None, why it is skipped) or raises ValueError for a broken header."""
    import yaml

    fm = front_matter(text)
    if fm is None:
        return None, f"{CARD} has no YAML front matter"
    try:
        meta = yaml.safe_load(fm)
    except yaml.YAMLError as exc:
        raise ValueError(f"{CARD} front matter is not valid YAML ({str(exc).splitlines()[0]})") from None
    info = meta.get("dataset_info") if isinstance(meta, dict) else None
    if info is None:
        return None, f"{CARD} front matter has no dataset_info"
    if isinstance(info, list):
        chosen = [i for i in info if isinstance(i, dict) and i.get("config_name", "default") == "default"]
        info = chosen[0] if len(chosen) == 1 else (info[0] if len(info) == 1 else None)
    if not isinstance(info, dict):
        raise ValueError(f"{CARD} dataset_info is not a mapping (or names no default config)")
    return info, None


def _feature_problems(info: dict, columns: list[str]) -> list[CardProblem]:
    feats = info.get("features")
    if isinstance(feats, dict):
        names = list(feats)
    elif isinstance(feats, list):
        names = [f.get("name") for f in feats if isinstance(f, dict)]
    else:
        return [CardProblem(f"{CARD} dataset_info has no features list")]
    return [
        CardProblem(f"{CARD} dataset_info.features lacks the shard column {c!r}") for c in columns if c not in names
    ] + [
        CardProblem(f"{CARD} dataset_info.features names {c!r}, which is no shard column")
        for c in names
        if c not in columns
    ]


def check_card(dataset_dir: Path, columns: list[str], stored: dict[str, int]) -> CardCheck:
    """Compare ``DIR/README.md``'s dataset_info with the shard ``columns`` and the ``stored`` rows per split."""
    readme = Path(dataset_dir) / CARD
    if not readme.is_file():
        return CardCheck(f"no {CARD}: write one with `cifar10-fgs card`", 0, ())
    try:
        info, skipped = _dataset_info(readme.read_text(encoding="utf-8", errors="replace"))
    except ValueError as exc:
        return CardCheck(None, 1, (CardProblem(str(exc)),))
    if skipped:
        return CardCheck(skipped, 0, ())
    problems = _feature_problems(info, columns)
    splits = info.get("splits")
    if isinstance(splits, dict):
        splits = [{"name": k, **(v if isinstance(v, dict) else {})} for k, v in splits.items()]
    if not isinstance(splits, list):
        return CardCheck(None, 1, (*problems, CardProblem(f"{CARD} dataset_info has no splits list")))
    card_counts = {s.get("name"): s.get("num_examples") for s in splits if isinstance(s, dict)}
    for split, rows in stored.items():
        if split not in card_counts:
            problems.append(CardProblem(f"{CARD} dataset_info.splits lacks the {split} split ({rows} rows)", split))
        elif card_counts[split] != rows:
            problems.append(
                CardProblem(
                    f"{CARD} says the {split} split has {card_counts[split]} examples; the shards hold {rows}", split
                )
            )
    problems += [
        CardProblem(f"{CARD} dataset_info.splits names {s!r}, which the dataset does not have", str(s))
        for s in card_counts
        if s not in stored
    ]
    return CardCheck(None, 1 + len(stored), tuple(problems))
