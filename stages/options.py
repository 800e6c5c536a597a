"""Numeric settings, declared once: what each may be (finite, in range), checked where the command
line is parsed and again where the Python API and the flows take them.

Each declaration is an argparse `type` (`parser.add_argument("--top-p", type=TOP_P)`): a bad value
is a usage error naming the option (argparse: `argument --top-p: must be at most 1, not 2`, exit
status 2), before anything is read or written. The same object checks a value given in Python,
`TOP_P.check(value, "top_p")`, raising ValueError with the same words.

    number(above=0)                  a finite number above 0
    number(at_least=0, at_most=1)    a finite number in [0, 1]
    integer(at_least=1)              a whole number, 1 or more

NaN and the infinities are refused everywhere: no setting of this package means anything at them.
"""

from __future__ import annotations

import argparse
import math
import numbers


class Number:
    """A finite number (a whole one with `whole`) within the bounds given; an argparse type."""

    def __init__(self, *, whole: bool = False, above: float | None = None, at_least: float | None = None,
                 below: float | None = None, at_most: float | None = None, unit: str = ""):
        self.whole, self.above, self.at_least, self.below, self.at_most = whole, above, at_least, below, at_most
        self.unit = unit
        self.__name__ = "whole number" if whole else "number"  # argparse names a type by it

    def __call__(self, text: str) -> float | int:
        """argparse type: the value of `text`, or ArgumentTypeError saying what the option takes."""
        try:
            value = self._parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {self.__name__}: {text!r}") from None
        problem = self.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}, not {text}")
        return value

    def check(self, value, name: str):
        """`value` if it is allowed, else ValueError naming the setting: for the Python API."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name} must be a {self.__name__}, not {value!r}")
        if self.whole and not float(value).is_integer():
            raise ValueError(f"{name} must be a whole number, not {value!r}")
        problem = self.problem(int(value) if self.whole else float(value))
        if problem:
            raise ValueError(f"{name} {problem}, not {value!r}")
        return int(value) if self.whole else value

    def problem(self, value: float) -> str | None:
        """What is wrong with a value ("must be above 0"), or None."""
        if not math.isfinite(value):
            return f"must be a finite {self.__name__}{self._range()}"
        if ((self.above is not None and not value > self.above) or (self.at_least is not None and value < self.at_least)
                or (self.below is not None and not value < self.below)
                or (self.at_most is not None and value > self.at_most)):
            return "must be " + self._range().strip()
        return None

    def _parse(self, text: str) -> float | int:
        if not self.whole:
            return float(text)
        try:
            return int(text)
        except ValueError:
            value = float(text)  # "1e3" is a whole number; "x" is not a number at all
        if math.isfinite(value) and not value.is_integer():
            raise ValueError(text)
        return int(value) if math.isfinite(value) else value

    def _range(self) -> str:
        u = self.unit

        def show(bound: float) -> str:
            return f"{bound:g}{u}" if isinstance(bound, float) else f"{bound:,}{u}".replace(",", "")

        low = (f"above {show(self.above)}" if self.above is not None else
               f"at least {show(self.at_least)}" if self.at_least is not None else None)
        high = (f"below {show(self.below)}" if self.below is not None else
                f"at most {show(self.at_most)}" if self.at_most is not None else None)
        if low and high:
            if self.at_least is not None and self.at_most is not None:
                return f" from {show(self.at_least)} to {show(self.at_most)}"
            return f" {low} and {high}"
        return f" {low or high}" if (low or high) else ""


def number(*, above: float | None = None, at_least: float | None = None, below: float | None = None,
           at_most: float | None = None, unit: str = "") -> Number:
    """A finite number within the bounds given (`above`/`below` exclusive, `at_least`/`at_most` inclusive)."""
    return Number(above=above, at_least=at_least, below=below, at_most=at_most, unit=unit)


def integer(*, at_least: int | None = None, at_most: int | None = None) -> Number:
    """A whole number within the bounds given (inclusive)."""
    return Number(whole=True, at_least=at_least, at_most=at_most)


# -- the declarations every command shares ---------------------------------------------------

POSITIVE = number(above=0)  # seconds, lengths, rates
TIME = number(at_least=0)  # a time in seconds, 0 or later
COUNT = integer(at_least=1)  # files, pieces, steps, layers
COUNT_OR_ZERO = integer(at_least=0)  # steps where 0 means none, spans where 0 means all
FRACTION = number(at_least=0, at_most=1)  # a share or a probability
MOMENTUM = number(at_least=0, below=1)
#: Random seeds: numpy and Keras take 0 to 2**32 - 1; a run adds its piece or segment index, so
#: leave room for that.
SEED = integer(at_least=0, at_most=2**31 - 1)
LEARNING_RATE = number(above=0, at_most=1)

# compose
COMPOSE_TEMPERATURE = number(above=0, at_most=100)  # logits / temperature: 0 has no meaning here
TOP_K = integer(at_least=0)  # 0: all
TOP_P = number(above=0, at_most=1)
NOTES_PER_SECOND = number(above=0, at_most=100)

# synthesize
SYNTH_TEMPERATURE = number(at_least=0, at_most=100)  # 0: no noise, the likeliest value
LEVEL = number(at_least=0, at_most=32767)  # RMS in 16-bit steps; 0 keeps the level as generated

# transcribe
THRESHOLD = number(above=0, below=1)  # 0 would start or hold a note everywhere, 1 nowhere
MIN_NOTE_MS = number(at_least=0, at_most=60_000)
#: A MIDI file states a tempo as microseconds per beat in 24 bits: at least 3.6 BPM; above
#: 1000 BPM no editor shows beats.
MIDI_TEMPO = number(at_least=4, at_most=1000)
SAMPLE_RATE = integer(at_least=1000, at_most=384_000)
YEAR = integer(at_least=1000, at_most=9999)
