"""Glob and regular-expression matching in time linear in the text, for rule values and keys.

Python's ``re`` backtracks: a glob of 150 ``*`` and an ``x`` (``.*`` 150 times) or a regex such
as ``(a|aa)+`` takes exponential or high-polynomial time on a short value that does not
match. Every match of a rule's glob or regex in Python goes through here instead:

- ``glob_match``: the glob is split at its ``*`` runs; the first and last pieces are matched
  where they must stand, each middle piece at its leftmost place after the previous one
  (leftmost is always right for ``*``-globs). A piece is literal text and ``?``: at most
  O(text x piece) work, with no backtracking across pieces.
- ``regex_fullmatch``: the pattern is parsed by Python's own parser (so it means exactly what
  ``re.fullmatch`` would) and run as an automaton: a Thompson NFA simulated as a DFA built
  lazily, one set of NFA states per step. Time is O(text x pattern), independent of the
  pattern's shape; memory is bounded (the DFA cache is cleared past ``_MAX_DFA_STATES``).
  Python's ``$`` (end, or before a final newline) and ``^`` (start) are kept as assertions.

A deadline can bound all the matching a block does (``time_limit``): past it, the next
matching step raises ``EvaluationTimeout``, which callers turn into a clear refusal.

This module holds no Django state and may be imported from CI tools.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import operator
import re
import re._constants as sre_constants  # Python 3.11: the regex parser's opcodes
import re._parser as sre_parser  # Python 3.11: used only to parse, never to match
import time
from collections.abc import Callable, Iterator
from typing import Any

# The NFA of the largest pattern we run (a regex vet_regex refuses but stored before it did,
# such as (a{1,100}){1,100}, expands to 10,000 states; a larger one is not run).
MAX_PROGRAM = 20_000
_MAX_DFA_STATES = 2_000  # cached DFA states per pattern before the cache is cleared
_CHECK_EVERY = 4_096  # characters between two looks at the deadline

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "tagsense_match_deadline", default=None
)


class EvaluationTimeout(Exception):
    """The matching of a ``time_limit`` block went past its deadline."""


class UnsupportedPattern(ValueError):
    """A regex this engine cannot run: syntax vet_regex refuses (possessive repeats,
    look-around, backreferences, ...) or an NFA larger than MAX_PROGRAM."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Matching inside the block raises EvaluationTimeout once `seconds` have passed (an
    enclosing, earlier deadline stays in force)."""
    limit = time.monotonic() + seconds
    outer = _deadline.get()
    token = _deadline.set(limit if outer is None else min(outer, limit))
    try:
        yield
    finally:
        _deadline.reset(token)


def check_deadline() -> None:
    """Raise EvaluationTimeout when the enclosing time_limit has passed (no-op without one)."""
    limit = _deadline.get()
    if limit is not None and time.monotonic() > limit:
        raise EvaluationTimeout


# --- globs -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _glob_matcher(pattern: str, question: bool = True) -> Callable[[str], bool]:
    """The glob as a function of the text. It is split into the pieces between `*` runs;
    each piece is matched at its leftmost place after the one before, the first at the start
    and the last at the end: no backtracking, linear in the text whatever the glob."""
    pieces = pattern.split("*")
    if question and "?" in pattern:
        return _regex_pieces_matcher(pieces)
    return _literal_pieces_matcher(pieces)


def glob_match(pattern: str, text: str) -> bool:
    """Whether the glob matches all of `text`: ``*`` any run of characters (also none), ``?``
    exactly one, anything else itself. Case-sensitive (callers fold both sides)."""
    return _glob_matcher(pattern)(text)


def wildcard_match(pattern: str, text: str) -> bool:
    """AWS tag policies' wildcard: ``*`` any run of characters (also none), every other
    character itself (``?`` included). Case-sensitive; linear like glob_match."""
    return _glob_matcher(pattern, False)(text)


def _literal_pieces_matcher(pieces: list[str]) -> Callable[[str], bool]:
    """Pieces of plain text (no `?`, or `?` not a wildcard), matched with str methods."""
    if len(pieces) == 1:
        return functools.partial(operator.eq, pieces[0])
    first, last = pieces[0], pieces[-1]
    middle = [piece for piece in pieces[1:-1] if piece]

    def match(text: str) -> bool:
        end = len(text) - len(last)
        if len(first) > end or not (text.startswith(first) and text.endswith(last)):
            return False
        position = len(first)
        for piece in middle:
            found = text.find(piece, position, end)
            if found < 0:
                return False
            position = found + len(piece)
        return True

    return match


def _regex_pieces_matcher(pieces: list[str]) -> Callable[[str], bool]:
    """Pieces with `?` wildcards, each a regex of literals and `.` for each `?` (a piece's
    match has the piece's length)."""
    compiled = [
        re.compile("".join("." if c == "?" else re.escape(c) for c in piece), re.DOTALL)
        for piece in pieces
    ]
    if len(pieces) == 1:
        whole, length = compiled[0], len(pieces[0])

        def match_whole(text: str) -> bool:
            check_deadline()
            return len(text) == length and whole.match(text) is not None

        return match_whole
    first, last, head, tail = compiled[0], compiled[-1], len(pieces[0]), len(pieces[-1])
    middle = [regex for regex, piece in zip(compiled[1:-1], pieces[1:-1], strict=True) if piece]

    def match(text: str) -> bool:
        check_deadline()
        end = len(text) - tail
        if head > end or first.match(text) is None or last.match(text, end) is None:
            return False
        position = head
        for regex in middle:
            found = regex.search(text, position, end)
            if found is None:
                return False
            position = found.end()
        return True

    return match


# --- regular expressions -----------------------------------------------------------------------

_CHAR, _SPLIT, _JMP, _BOL, _EOL, _MATCH = range(6)
_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT}


def _class_predicate(items: list[tuple[Any, Any]]) -> Callable[[str], bool]:
    negate = False
    singles: set[int] = set()
    ranges: list[tuple[int, int]] = []
    for op, arg in items:
        if op == sre_constants.NEGATE:
            negate = True
        elif op == sre_constants.LITERAL:
            singles.add(arg)
        elif op == sre_constants.RANGE:
            ranges.append(arg)
        else:  # \d, \w, \s and the like: refused by vet_regex
            raise UnsupportedPattern(f"unsupported in a character class: {op}")

    def predicate(char: str) -> bool:
        code = ord(char)
        inside = code in singles or any(low <= code <= high for low, high in ranges)
        return inside != negate

    return predicate


class _Program:
    """A Thompson NFA: instructions (op, a, b); for _CHAR, a is the predicate."""

    def __init__(self) -> None:
        self.code: list[list[Any]] = []

    def emit(self, op: int, a: Any = None, b: Any = None) -> int:
        if len(self.code) >= MAX_PROGRAM:
            raise UnsupportedPattern("the pattern expands to too large an automaton")
        self.code.append([op, a, b])
        return len(self.code) - 1

    def sequence(self, items: Any) -> None:
        for op, arg in items:
            self.item(op, arg)

    def item(self, op: Any, arg: Any) -> None:
        if op == sre_constants.LITERAL:
            self.emit(_CHAR, chr(arg).__eq__)
        elif op == sre_constants.NOT_LITERAL:
            self.emit(_CHAR, chr(arg).__ne__)
        elif op == sre_constants.ANY:
            self.emit(_CHAR, "\n".__ne__)  # no DOTALL: . is anything but a newline
        elif op == sre_constants.IN:
            self.emit(_CHAR, _class_predicate(arg))
        elif op == sre_constants.SUBPATTERN:
            _group, add_flags, del_flags, sub = arg
            if add_flags or del_flags:
                raise UnsupportedPattern("inline flags")
            self.sequence(sub)
        elif op == sre_constants.BRANCH:
            self.branch(arg[1])
        elif op in _REPEATS:
            self.repeat(*arg)
        elif op == sre_constants.AT and arg == sre_constants.AT_BEGINNING:
            self.emit(_BOL)
        elif op == sre_constants.AT and arg == sre_constants.AT_END:
            self.emit(_EOL)
        else:  # look-around, backreferences, atomic groups, possessive repeats, \b, \A, \Z
            raise UnsupportedPattern(f"unsupported: {op}")

    def branch(self, branches: list[Any]) -> None:
        jumps = []
        *alternatives, last = branches
        for branch in alternatives:
            split = self.emit(_SPLIT)
            self.code[split][1] = split + 1
            self.sequence(branch)
            jumps.append(self.emit(_JMP))
            self.code[split][2] = len(self.code)
        self.sequence(last)
        for jump in jumps:
            self.code[jump][1] = len(self.code)

    def repeat(self, low: int, high: int, body: Any) -> None:
        for _ in range(low):
            self.sequence(body)
        if high == sre_constants.MAXREPEAT:
            loop = self.emit(_SPLIT)
            self.sequence(body)
            self.emit(_JMP, loop)
            self.code[loop][1], self.code[loop][2] = loop + 1, len(self.code)
            return
        splits = []
        for _ in range(high - low):
            splits.append(self.emit(_SPLIT))
            self.sequence(body)
        for split in splits:
            self.code[split][1], self.code[split][2] = split + 1, len(self.code)


class _Automaton:
    """The NFA of one pattern and its lazily built DFA (sets of NFA states)."""

    def __init__(self, pattern: str) -> None:
        try:
            parsed = sre_parser.parse(pattern)
        except re.error as exc:
            raise UnsupportedPattern(str(exc)) from exc
        if parsed.state.flags & ~(re.UNICODE | sre_constants.SRE_FLAG_UNICODE):
            raise UnsupportedPattern("inline flags")
        program = _Program()
        program.sequence(parsed)
        program.emit(_MATCH)
        self.code = [tuple(instruction) for instruction in program.code]
        self.accept = len(self.code) - 1
        self.steps: dict[tuple[frozenset[int], str], frozenset[int]] = {}
        self.start = self.closure([0], bol=True, eol=False)

    def closure(self, pcs: Any, *, bol: bool, eol: bool) -> frozenset[int]:
        """The states reachable from `pcs` without reading a character: character tests and
        the accepting state, and `$` tests still waiting when `eol` is false."""
        code, seen, stack, out = self.code, set(), list(pcs), set()
        while stack:
            pc = stack.pop()
            if pc in seen:
                continue
            seen.add(pc)
            op, a, b = code[pc]
            if op == _SPLIT:
                stack.append(b)
                stack.append(a)
            elif op == _JMP:
                stack.append(a)
            elif op == _BOL:
                if bol:
                    stack.append(pc + 1)
            elif op == _EOL:
                if eol:
                    stack.append(pc + 1)
                else:
                    out.add(pc)
            else:
                out.add(pc)
        return frozenset(out)

    def step(self, state: frozenset[int], char: str) -> frozenset[int]:
        key = (state, char)
        found = self.steps.get(key)
        if found is None:
            code = self.code
            moved = [pc + 1 for pc in state if code[pc][0] == _CHAR and code[pc][1](char)]
            found = self.closure(moved, bol=False, eol=False)
            if len(self.steps) >= _MAX_DFA_STATES:
                self.steps.clear()
            self.steps[key] = found
        return found

    def fullmatch(self, text: str) -> bool:
        state, last = self.start, len(text) - 1
        has_deadline = _deadline.get() is not None
        for index, char in enumerate(text):
            if index == last and char == "\n":  # Python's $ also holds before a final newline
                state = self.closure(state, bol=index == 0, eol=True)
            state = self.step(state, char)
            if not state:
                return False
            if has_deadline and not index % _CHECK_EVERY:
                check_deadline()
        return self.accept in self.closure(state, bol=not text, eol=True)


@functools.lru_cache(maxsize=1024)
def _automaton(pattern: str) -> _Automaton:
    return _Automaton(pattern)


def runnable(pattern: str) -> bool:
    """Whether regex_fullmatch can run the pattern."""
    try:
        _automaton(pattern)
    except UnsupportedPattern:
        return False
    return True


def automaton_size(pattern: str) -> int:
    """The number of states of the pattern's automaton (MAX_PROGRAM + 1 when larger, or when
    the engine cannot run it)."""
    try:
        return len(_automaton(pattern).code)
    except UnsupportedPattern:
        return MAX_PROGRAM + 1


def regex_fullmatch(pattern: str, text: str) -> bool:
    """``re.fullmatch(pattern, text) is not None``, in linear time, for the patterns without
    flags, look-around, backreferences, atomic groups or possessive repeats (anything else
    raises UnsupportedPattern)."""
    check_deadline()
    return _automaton(pattern).fullmatch(text)
