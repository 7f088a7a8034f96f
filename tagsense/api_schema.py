"""OpenAPI descriptions of TagSense's own authentication classes (drf-spectacular)."""

from drf_spectacular.authentication import SessionScheme


class TagSenseSessionScheme(SessionScheme):
    target_class = "tagsense.api.SessionAuthentication"
