"""Answer scoring: the normalisation, exact match and token F1 that QA benchmarks use.

The normalisation is SQuAD's, which Search-R1, verl-agent and FlashRAG all apply: lower
case, drop ASCII punctuation, drop the articles ``a``/``an``/``the``, collapse white
space. A prediction is an exact match when its normalised form equals the normalised
form of any gold answer; its F1 is the best token-overlap F1 over the gold answers.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable

__all__ = ["exact_match", "f1_score", "normalize_answer"]

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """``text`` lower-cased, without ASCII punctuation and articles, with single spaces."""
    lowered = str(text).lower()
    no_punctuation = "".join(ch for ch in lowered if ch not in _PUNCTUATION)
    no_articles = _ARTICLES.sub(" ", no_punctuation)
    return " ".join(no_articles.split())


def exact_match(prediction: str, golds: Iterable[str]) -> bool:
    """Whether the normalised ``prediction`` equals any normalised gold answer."""
    predicted = normalize_answer(prediction)
    return any(predicted == normalize_answer(gold) for gold in golds)


def _token_f1(predicted: list[str], gold: list[str]) -> float:
    common = Counter(predicted) & Counter(gold)
    overlap = sum(common.values())
    if not predicted or not gold:
        return float(predicted == gold)
    if overlap == 0:
        return 0.0
    precision = overlap / len(predicted)
    recall = overlap / len(gold)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, golds: Iterable[str]) -> float:
    """The best token-level F1 of ``prediction`` against the gold answers (0 without
    gold answers)."""
    predicted = normalize_answer(prediction).split()
    return max((_token_f1(predicted, normalize_answer(g).split()) for g in golds), default=0.0)
