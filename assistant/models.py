"""The assistant's settings per organization, its providers in failover order, and each
member's conversations.

API keys are stored encrypted (tagsense.crypto, purpose "assistant-provider-key"), never shown
again and never logged; the settings page only says whether a key is set.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from tagsense import outbound
from tagsense.crypto import decrypt, encrypt
from tagsense.tenancy.models import TenantModel

KEY_PURPOSE = "assistant-provider-key"


class AssistantSettings(TenantModel):
    """One row per organization (absent: the defaults below, the offline analyst only)."""

    temperature = models.FloatField(default=0.2)
    max_tokens = models.PositiveIntegerField(default=1024)
    monthly_token_budget = models.PositiveBigIntegerField(
        default=0,
        help_text="Tokens in and out per calendar month (UTC) for model providers; 0: none",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="uniq_assistant_settings_org")
        ]


def endpoint_problem(url: str) -> str | None:
    """Why a provider's base URL is refused, or None. http(s) only. Its host is resolved and
    every address checked (tagsense.outbound, policy PRIVATE_ALLOWED): private and loopback
    addresses are allowed (a vLLM or Ollama inside the network is the usual case); link-local
    ones are not: 169.254.169.254 is the cloud's instance-metadata service, whose credentials
    the portal's requests would carry off to whoever reads the provider's errors. A name that
    does not resolve from here is accepted and checked when the portal connects
    (assistant.backends pins every connection to a checked address); redirects are never
    followed."""

    if urlsplit(url).scheme not in ("http", "https"):
        return "The base URL must start with http:// or https://."
    try:
        outbound.check_url(url, outbound.PRIVATE_ALLOWED, allow_unresolved=True)
    except outbound.OutboundRefused as exc:
        return f"The base URL's host {exc}."
    return None


class Provider(TenantModel):
    """A language-model provider, tried in `position` order (failover). The offline analyst
    needs no row: it always answers last."""

    OPENAI, ANTHROPIC, COMPATIBLE = "openai", "anthropic", "openai_compatible"
    KINDS = [
        (OPENAI, "OpenAI"),
        (ANTHROPIC, "Anthropic"),
        (COMPATIBLE, "OpenAI-compatible endpoint (Azure OpenAI, vLLM, Ollama, LiteLLM)"),
    ]

    name = models.SlugField(max_length=64, help_text="How answers and the audit log name it")
    kind = models.CharField(max_length=32, choices=KINDS)
    model = models.CharField(max_length=200)
    base_url = models.URLField(
        max_length=500, blank=True, help_text="Required for an OpenAI-compatible endpoint"
    )
    encrypted_api_key = models.TextField(blank=True, editable=False)
    position = models.PositiveSmallIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    timeout_seconds = models.FloatField(default=30.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="uniq_provider_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()}, {self.model})"

    def clean(self) -> None:

        if self.kind == self.COMPATIBLE and not self.base_url:
            raise ValidationError({"base_url": "An OpenAI-compatible endpoint needs its base URL."})
        if self.base_url:
            problem = endpoint_problem(self.base_url)
            if problem:
                raise ValidationError({"base_url": problem})

    @property
    def has_key(self) -> bool:
        return bool(self.encrypted_api_key)

    def set_api_key(self, key: str) -> None:

        self.encrypted_api_key = encrypt(KEY_PURPOSE, key) if key else ""

    def api_key(self) -> str:
        """The plaintext key, for the SDK client only."""

        return decrypt(KEY_PURPOSE, self.encrypted_api_key) if self.encrypted_api_key else ""


class Conversation(TenantModel):
    """A member's conversation (history is per user and organization)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    mode = models.CharField(max_length=32, default="chat")
    title = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["organization", "user", "-updated_at"])]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class ChatMessage(TenantModel):
    """One turn: the member's question, or the assistant's answer with who answered, what it
    cost and what it rests on (citations)."""

    USER, ASSISTANT = "user", "assistant"
    PENDING, STREAMING, COMPLETE, STOPPED, FAILED = (
        "pending", "streaming", "complete", "stopped", "failed",
    )  # fmt: skip
    STATUSES = [(s, s) for s in (PENDING, STREAMING, COMPLETE, STOPPED, FAILED)]

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=16, choices=[(USER, USER), (ASSISTANT, ASSISTANT)])
    mode = models.CharField(max_length=32, default="chat")
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=STATUSES, default=COMPLETE)
    provider = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=200, blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    cached = models.BooleanField(default=False)
    failovers = models.JSONField(default=list, blank=True)
    citations = models.JSONField(default=list, blank=True)
    tool_calls = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["organization", "created_at"])]
