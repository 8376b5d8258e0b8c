"""Word lists (one expression per line in `rules/words/*.txt`) matched with an Aho-Corasick automaton.

pyahocorasick scans all expressions of a list in one pass over the text (~20 MB/s per core here,
against ~2 MB/s for a Python `re` alternation of the same literals).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ahocorasick

from cleaning.errors import CleaningError


def read_word_list(path: Path) -> list[str]:
    """Expressions of a list file: `#` starts a comment line; blank lines are ignored."""
    if not path.is_file():
        raise CleaningError(f"word list not found: {path}")
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.strip()
        if word and not word.startswith("#"):
            words.append(word)
    if not words:
        raise CleaningError(f"word list is empty: {path}")
    return words


@dataclass(frozen=True)
class WordMatches:
    hits: int
    chars: int  # characters covered by the longest non-overlapping matches


class WordLists:
    """All word lists in one Aho-Corasick automaton: one scan of a text counts every list.

    Matches are the longest non-overlapping ones over all lists together; an expression in
    several lists counts for each of them.
    """

    def __init__(self, lists: dict[str, list[str]]) -> None:
        self.names = sorted(lists)
        self.sizes = {name: len(words) for name, words in lists.items()}
        owners: dict[str, list[int]] = {}
        for index, name in enumerate(self.names):
            for word in lists[name]:
                owners.setdefault(word, []).append(index)
        self._automaton = ahocorasick.Automaton()
        for word, indexes in owners.items():
            self._automaton.add_word(word, (len(word), tuple(indexes)))
        if owners:
            self._automaton.make_automaton()
        self._empty = not owners

    def match(self, text: str) -> dict[str, WordMatches]:
        hits = [0] * len(self.names)
        chars = [0] * len(self.names)
        if not self._empty:
            for _, (length, indexes) in self._automaton.iter_long(text):
                for i in indexes:
                    hits[i] += 1
                    chars[i] += length
        return {name: WordMatches(hits[i], chars[i]) for i, name in enumerate(self.names)}

    def found(self, text: str, name: str) -> list[str]:
        """The expressions of list `name` found in text (for `rules explain`)."""
        if self._empty:
            return []
        i = self.names.index(name)
        return [text[end - n + 1 : end + 1] for end, (n, owners) in self._automaton.iter_long(text) if i in owners]
