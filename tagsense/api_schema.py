"""OpenAPI descriptions (drf-spectacular): TagSense's own authentication classes, and the
problem+json error responses every operation documents besides its own."""

from __future__ import annotations

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers

from .api import PROBLEM_CONTENT_TYPE
from .tenancy.api import OrganizationAPIView


class TagSenseSessionScheme(SessionScheme):
    target_class = "tagsense.api.SessionAuthentication"


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, as tagsense.api.problem() writes them."""

    type = serializers.CharField(help_text='Always "about:blank".')
    title = serializers.CharField(help_text="The HTTP status phrase, or the kind of problem.")
    status = serializers.IntegerField()
    detail = serializers.CharField(required=False, help_text="What was wrong, for a person.")
    errors = serializers.JSONField(
        required=False,
        help_text="400 only: each field's messages ({field: [messages]}), or a list of "
        "problems with their place (a rule file, an AWS tag policy).",
    )

    class Meta:
        ref_name = "Problem"


# What each error status means wherever it is documented (AutoSchema below).
ERROR_DESCRIPTIONS = {
    "400": "The request is malformed or has invalid fields (problem+json, `errors` name them).",
    "401": "No credentials, or a token that is unknown, expired or revoked.",
    "403": "The caller's role, the token's scope, or the organization's SSO or two-factor "
    "requirement does not allow this request.",
    "404": "No such organization for this caller, or no such object in it (the same answer).",
    "413": "The request body is larger than the server accepts.",
    "415": "The request body's content type is not JSON, a form or multipart.",
}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema, plus the errors any operation can answer, all
    `application/problem+json` (tagsense.api's exception handler): 400 (a malformed request is
    refused before the view, e.g. a NUL character anywhere), 401 and 403; 404 on
    organization-scoped paths; 413 and 415 where the operation takes a body. No throttling is
    configured, so no 429. An operation's own declaration of a status wins."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        """A text field DRF trims and may not be blank (the default CharField) refuses text of
        whitespace only: say so with a pattern (one non-space character), unless the field
        has its own (a RegexField's)."""
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and type(field) in (serializers.CharField, serializers.EmailField)
            and field.trim_whitespace
            and not field.allow_blank
            and schema.get("type") == "string"
            and "pattern" not in schema
        ):
            schema["pattern"] = r"\S"
        return schema

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None

        codes = ["400", "401", "403"]
        if isinstance(self.view, OrganizationAPIView):
            codes.append("404")
        if "requestBody" in operation:
            codes += ["413", "415"]
        problem = self.resolve_serializer(ProblemSerializer, "response").ref
        responses = operation["responses"]
        for code in codes:
            documented = responses.setdefault(code, {"description": ERROR_DESCRIPTIONS[code]})
            if "content" not in documented:
                documented["content"] = {PROBLEM_CONTENT_TYPE: {"schema": problem}}
        return operation
