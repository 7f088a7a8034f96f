"""The Assistant's answers as HTML: Markdown that cannot carry markup of its own.

Everything rendered here is attacker-controlled: the model's words, and the tag values, resource
names and policy texts that were fed to it and that a prompt injection may make it repeat. So:

- markdown-it-py parses CommonMark (plus tables and ~~strikethrough~~) with raw HTML off: any
  `<tag>` in the text comes out as escaped text, never as an element.
- A link or autolink is kept only when its target is http(s), mailto or a path on this site
  (`/o/acme/...`, `?page=2`, `#top`); anything else (javascript:, vbscript:, data:, file:, a
  protocol-relative `//host`) stays as the literal text the model wrote. External links get
  rel="noopener noreferrer nofollow".
- Images never load: `![alt](src)` becomes a link to src with alt as its label. A picture fetched
  on render is the classic way for an injected prompt to smuggle data out (the secret in the
  image's query string); a link needs a person's click.
- Fenced and indented code keep their text, escaped, in `<pre data-copy><code>`: the panel's
  script finds `pre[data-copy]` and adds a copy button; nothing in it is ever executed.
- nh3 (the ammonia sanitiser) then re-parses the HTML with an allow-list of the elements and
  attributes the renderer above produces: a second wall, should a parser bug or a future option
  let something else through.

Partial answers (streamed text cut anywhere: an open code fence, half a link) render as well as
whole ones: the parser closes what is open, and half a link is plain text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import nh3
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from .redact import redact as default_redact

EXTERNAL_REL = "noopener noreferrer nofollow"
SCHEMES = frozenset({"http", "https", "mailto"})
# A scheme is whatever precedes the first ":" that comes before any "/", "?" or "#": a target
# with one must name an allowed scheme; one without is a path on this site.
_SCHEME = re.compile(r"^([^/?#]*?):")
# What a code fence's info string may give as the language's class; other info strings are
# dropped rather than escaped into the attribute.
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.-]{1,32}")
_LANGUAGE_CLASS = re.compile(r"language-[A-Za-z0-9_+#.-]{1,32}")


def _is_allowed_target(url: str) -> bool:
    """Whether a link target (as markdown-it normalised it: entities decoded, then percent-
    encoded) is http(s), mailto or a path on this site."""
    url = url.strip()
    # Browsers ignore tabs and newlines inside a URL and treat "\" as "/": look past both.
    squashed = re.sub(r"[\x00-\x20]", "", url).replace("\\", "/")
    if squashed.startswith("//"):
        return False  # another host, with whatever scheme the page has
    match = _SCHEME.match(squashed)
    if match is None:
        return True
    return match.group(1).lower() in SCHEMES


def _is_external(url: str) -> bool:
    return url.lower().startswith(("http:", "https:"))


class _Renderer(RendererHTML):
    """The default renderer, with rel on external links, images as links, and code blocks
    that carry the copy hook."""

    def link_open(
        self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        token = tokens[idx]
        if _is_external(str(token.attrGet("href") or "")):
            token.attrSet("rel", EXTERNAL_REL)
        return self.renderToken(tokens, idx, options, env)

    def image(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        token = tokens[idx]
        src = str(token.attrGet("src") or "")
        label = escape(self.renderInlineAsText(token.children or [], options, env) or src)
        rel = f' rel="{EXTERNAL_REL}"' if _is_external(src) else ""
        return f'<a href="{escape(src)}"{rel}>{label}</a>'

    def fence(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        token = tokens[idx]
        words = token.info.split()
        language = words[0] if words and _LANGUAGE.fullmatch(words[0]) else ""
        return _code_block(token.content, language)

    def code_block(
        self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        return _code_block(tokens[idx].content, "")


def _code_block(content: str, language: str) -> str:
    css = f' class="language-{language}"' if language else ""
    return f"<pre data-copy><code{css}>{escape(content)}</code></pre>\n"


def _keep_attribute(element: str, attribute: str, value: str) -> str | None:
    if element == "code" and attribute == "class":
        return value if _LANGUAGE_CLASS.fullmatch(value) else None
    return value


_parser = MarkdownIt("commonmark", {"html": False}, renderer_cls=_Renderer).enable(
    ["table", "strikethrough"]
)
_parser.validateLink = _is_allowed_target  # type: ignore[method-assign]

_cleaner: Any = nh3.Cleaner(
    tags={
        *("p", "br", "hr", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6"),
        *("ul", "ol", "li", "strong", "em", "s", "code", "pre", "a"),
        *("table", "thead", "tbody", "tr", "th", "td"),
    },
    clean_content_tags={"script", "style"},
    attributes={"a": {"href", "title"}, "ol": {"start"}, "pre": {"data-copy"}, "code": {"class"}},
    tag_attribute_values={
        "a": {"rel": {EXTERNAL_REL}},
        "th": {"style": {"text-align:left", "text-align:center", "text-align:right"}},
        "td": {"style": {"text-align:left", "text-align:center", "text-align:right"}},
    },
    attribute_filter=_keep_attribute,
    url_schemes=set(SCHEMES),
    link_rel=None,
    strip_comments=True,
)


def render(text: str) -> SafeString:
    """Markdown from the model (untrusted, possibly cut mid-stream) as HTML safe to insert."""
    html = _parser.render(text or "")
    return mark_safe(_cleaner.clean(html))  # noqa: S308 - sanitised by nh3 on the line above


# Fences as CommonMark has them: indented by at most three spaces; a backtick fence's info
# string holds no backtick (a line of "```aws s3 ls```" is inline code); a closing fence the
# same character, at least as long, with nothing after it.
_FENCE_OPEN = re.compile(r" {0,3}(?:(`{3,})[^`]*|(~{3,}).*)$")
_FENCE_CLOSE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*$")


def settled_end(text: str, start: int = 0) -> int:
    """Where the settled blocks of a streamed Markdown text end, scanning from `start` (itself
    a settled end, or 0): after the last blank line, outside a code fence, that a line
    beginning with neither a space nor a tab follows (its first character is enough). What lies
    before it renders the same whatever comes after (a paragraph, a list, a heading, a closed
    fence), but for the looseness of a list that later blank lines split; what is at or after
    it may still change.

    A fence opened indented may belong to a list item, which a line that is not indented ends
    (and the fence with it, where the text alone cannot tell): from there on nothing settles
    and the rest is rendered whole, as before."""
    end = start
    fence, fence_indented = "", False  # the open fence's marker; whether it was indented
    blank = False
    position = start
    while True:
        newline = text.find("\n", position)
        line = text[position:] if newline < 0 else text[position:newline]
        starts_block = line[:1] not in (" ", "\t", "")
        if fence and fence_indented and starts_block:
            return end
        if newline < 0:  # the last line, incomplete: its first character decides a cut
            return position if blank and not fence and starts_block else end
        if fence:
            closer = _FENCE_CLOSE.match(line)
            if closer and closer.group(1)[0] == fence[0] and len(closer.group(1)) >= len(fence):
                fence = ""
        else:
            if blank and starts_block:
                end = position
            opener = _FENCE_OPEN.match(line)
            if opener:
                fence = opener.group(1) or opener.group(2)
                fence_indented = not starts_block
        blank = not fence and not line.strip()
        position = newline + 1


class StreamingRenderer:
    """A streamed answer as HTML, each settled block rendered once (settled_end) and only the
    open tail again on every token: rendering the whole answer per token costs its length
    squared (3.7 ms a render at 4 KB). The finished answer is rendered whole once more.

    Model text is redacted (assistant.redact) before it is rendered, each time: a secret split
    over tokens is redacted as soon as its whole pattern is visible, since the open tail is
    redacted again from its start on every token. The tail's last word, until whitespace ends
    it, is held back: it may be the first part of a secret that its pattern does not match yet
    (the first 12 of an access key's 20 characters); the finished answer shows it."""

    def __init__(self, redact: Callable[[str], str] | None = None) -> None:

        self.redact = redact or default_redact
        self.text = ""
        self.settled = 0

    def add(self, delta: str) -> tuple[SafeString | None, SafeString]:
        """(the newly settled blocks' HTML, or None; the open tail's HTML)."""
        self.text += delta
        end = settled_end(self.text, self.settled)
        blocks = None
        if end > self.settled:
            blocks = render(self.redact(self.text[self.settled : end]))
            self.settled = end
        tail = self.text[self.settled :]
        tail = tail[: len(tail) - len(_LAST_WORD.search(tail).group(0))]  # type: ignore[union-attr]
        return blocks, render(self.redact(tail))


_LAST_WORD = re.compile(r"\S*\Z")
