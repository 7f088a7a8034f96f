"""URL converters of the policies pages and API."""

from django.urls import register_converter


class FrameworkSlugConverter:
    """A framework's slug: a custom framework's is a slug, but a built-in one's is its id,
    which may hold a dot (pci-dss-4.0), which Django's `slug` converter refuses."""

    regex = r"[-a-zA-Z0-9_.]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(FrameworkSlugConverter, "framework")
