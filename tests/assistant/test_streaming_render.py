"""A streamed answer rendered block by block (assistant.markdown.StreamingRenderer): what a
person sees while it streams is what the whole answer renders to, without rendering the whole
answer again on every token."""

from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.markdown import StreamingRenderer, render, settled_end


def test_blocks_settle_after_a_blank_line_once_the_next_block_begins():
    text = "Para one\n\n## Heading\n\nPara two\n"
    assert text[: settled_end(text)] == "Para one\n\n## Heading\n\n"
    assert settled_end("Para one\n\n") == 0  # the next line may still continue the block
    assert settled_end("Para one\n\n  ") == 0  # indented: it may
    assert settled_end("Para one\n\nN") == len("Para one\n\n")  # a new block has begun


def test_a_code_fence_with_blank_lines_stays_one_block_until_it_closes():
    text = "```bash\nfirst\n\nsecond\n\n"
    assert settled_end(text) == 0
    closed = text + "```\n\nAfter\n"
    assert closed[: settled_end(closed)] == text + "```\n\n"
    # Indented by four spaces, a run of backticks is the code's text, not its end.
    assert settled_end("```\ncode\n    ```\n\nstill code\n") == 0


def test_inline_code_at_the_start_of_a_line_opens_no_fence():
    text = "```aws s3 ls```\n\nNext\n"
    assert text[: settled_end(text)] == "```aws s3 ls```\n\n"


def test_a_fence_in_a_list_item_that_a_dedented_line_may_end_settles_nothing_after_it():
    # Markdown ends the item (and its fence) at the dedented "```", which opens a new fence.
    text = "- tag it\n  ```\n  aws\n```\n\nstill code\n"
    assert settled_end(text) == 0
    assert render(text[: settled_end(text)]) + render(text[settled_end(text) :]) == render(text)


def test_an_indented_continuation_keeps_its_list_item():
    text = "1. Tag the instance\n\n   ```bash\n   aws ec2 create-tags\n   ```\n\n"
    assert settled_end(text) == 0
    assert settled_end(text + "2. Check\n") == len(text)


def test_the_streamed_html_is_the_blocks_then_the_tail_and_each_block_is_rendered_once():
    renderer = StreamingRenderer()
    answer = "Two **production** instances lack an Owner tag:\n\n| Name | Account |\n"
    answer += "| --- | --- |\n| web-1 | 1234 |\n\nTag them with `Owner`.\n\n```bash\naws ec2\n```\n"
    shown_blocks, tail, renders_of_first_block = "", "", 0
    for i, word in enumerate(answer.split(" ")):
        blocks, tail = renderer.add(word if i == 0 else " " + word)
        if blocks is not None:
            renders_of_first_block += "production" in blocks
            shown_blocks += blocks
    assert renders_of_first_block == 1
    assert shown_blocks + tail == render(answer)
    assert "<table>" in shown_blocks and "<pre data-copy" in tail


def test_unsafe_text_split_across_tokens_stays_inert():
    renderer = StreamingRenderer()
    html = ""
    for part in ["[click](java", "script:alert(1))\n\n<img src=x ", "onerror=alert(1)>\n\nok"]:
        blocks, tail = renderer.add(part)
        html += (blocks or "") + tail
    assert "<img" not in html and 'href="javascript' not in html and "<a" not in html


_line = st.text(alphabet="abc *_`#>|-:", min_size=1, max_size=12).filter(
    lambda s: s.strip() and not s.lstrip().startswith(("-", "*", "+", ">"))  # no lists or quotes
)
_block = st.one_of(
    st.lists(_line, min_size=1, max_size=3).map("\n".join),  # paragraphs, headings, tables
    st.tuples(st.sampled_from(["```", "~~~", "````", "  ```", "   ~~~"]), st.lists(
        st.sampled_from(["x", "", "  y", "```", "~~~", "    ```", "```a`b", "```x```"]),
        max_size=4)).map(
        lambda f: "\n".join([f[0] + "sh", *f[1], f[0]])),  # fences, blank lines inside
    st.sampled_from(["```aws s3 ls```", "``` a`b", "    ```", "~~~ `x`"]),  # fence-like lines
    st.lists(st.sampled_from(["    code", "", "    more"]), min_size=1, max_size=3).map(
        lambda lines: "\n".join(["    indented", *lines])),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(_block, min_size=1, max_size=6), st.data())
def test_what_settles_renders_the_same_whatever_follows(blocks, data):
    """Cut a streamed text anywhere: the blocks settled so far, rendered on their own, followed
    by the rest rendered on its own, are the whole text rendered (lists aside: a later blank
    line can make a list loose, which the finished answer's whole render shows)."""
    text = "\n\n".join(blocks) + "\n"
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    end = settled_end(text[:cut])
    assert end <= cut
    assert render(text[:end]) + render(text[end:]) == render(text)
