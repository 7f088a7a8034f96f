"""`{% load assistant_markdown %}{{ answer|markdown }}`: the Assistant's Markdown as safe HTML."""

from django import template
from django.utils.safestring import SafeString

from assistant.markdown import render

register = template.Library()


@register.filter(name="markdown")
def markdown(text: object) -> SafeString:
    """Renders any value, even one already marked safe, as untrusted Markdown (see
    assistant.markdown): the model's output is never trusted as HTML."""
    return render("" if text is None else str(text))
