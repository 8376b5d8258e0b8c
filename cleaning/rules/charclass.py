"""One table from code point to a bit set of character classes, so that a line's character classes
are counted with one gather over the batch's code points instead of a comparison per class."""

from __future__ import annotations

import numpy as np

HIRA, KATA, KANJI, ALPHA, DIGIT, SYMBOL, SPACE, JA_PUNCT = (1 << i for i in range(8))
COMMA, PERIOD, SEPARATOR, SENTENCE_END, CLOSE, ELLIPSIS, COLON, BULLET = (1 << i for i in range(8, 16))
EXCLAIM, EMOTE, PARTICLE, DATE_UNIT, OPEN, HYPHEN = (1 << i for i in range(16, 22))

_CHARS = {
    JA_PUNCT: "、。「」『』・",
    COMMA: "、,",
    PERIOD: "。",
    SEPARATOR: "|｜>»›/",
    SENTENCE_END: "。．.!?",
    CLOSE: "」』)）】〕>",
    ELLIPSIS: "…‥・",
    COLON: ":：",
    BULLET: "■□◆◇●○◎・※▶►▼▲△▽★☆→⇒>-*+#",
    EXCLAIM: "!?",
    EMOTE: "♪☆★♡♥❤~〜ｗw笑",
    PARTICLE: "をがはにでとものへや",
    DATE_UNIT: "年月日時分",
    OPEN: "(（[【「『",
    HYPHEN: "-‐−",
}


def _build() -> np.ndarray:
    table = np.zeros(0x110000, dtype=np.uint32)
    cp = np.arange(0x110000, dtype=np.uint32)

    def span(lo: int, hi: int) -> np.ndarray:
        return (cp >= lo) & (cp <= hi)

    table[span(0x3041, 0x309F)] |= HIRA
    table[span(0x30A0, 0x30FF) | span(0x31F0, 0x31FF) | span(0xFF66, 0xFF9F)] |= KATA
    table[span(0x4E00, 0x9FFF) | span(0x3400, 0x4DBF) | span(0xF900, 0xFAFF) | (cp == 0x3005)] |= KANJI
    table[span(65, 90) | span(97, 122)] |= ALPHA
    table[span(48, 57)] |= DIGIT
    ascii_punct = span(0x21, 0x2F) | span(0x3A, 0x40) | span(0x5B, 0x60) | span(0x7B, 0x7E)
    marks = np.isin(cp, [ord(c) for c in "!?.,()"])
    table[(ascii_punct & ~marks) | span(0x2010, 0x2BFF) | span(0x1F000, 0x1FAFF) | span(0xFF01, 0xFF0F)] |= SYMBOL
    table[[32, 0x3000, 0xA0]] |= SPACE
    for bit, chars in _CHARS.items():
        table[[ord(c) for c in chars]] |= bit
    return table


TABLE = _build()


def classes(cp: np.ndarray) -> np.ndarray:
    """The class bits of every code point."""
    return TABLE[cp]
