"""Menus that show a member only what their role can open:
`{% nav_link "audit-log" "Audit" %}` renders the link to that organization page when the page's
view admits the member's role (tagsense.tenancy.views.may_open), and nothing otherwise."""

from django import template
from django.template.context import Context
from django.urls import reverse
from django.utils.html import format_html

from ..views import may_open

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_link(context: Context, url_name: str, label: str) -> str:
    organization, membership = context.get("organization"), context.get("membership")
    if organization is None or membership is None:
        return ""
    url = reverse(url_name, args=[organization.slug])
    if not may_open(membership, url):
        return ""
    request = context.get("request")
    if request is not None and request.path == url:
        return format_html('<a href="{}" aria-current="page">{}</a>', url, label)
    return format_html('<a href="{}">{}</a>', url, label)
