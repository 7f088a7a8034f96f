"""The assistant's pages: the full page and the panel (every page opens it), asking, the
answer's server-sent events, stopping, the settings (owners and admins) and the use per member
(owners, admins and auditors).

The stream is a StreamingHttpResponse whose generator runs after the view has returned, so
outside the request's transaction: assistant.chat.answer opens its own short tenant-scoped
transactions. The answer arrives as sanitised HTML (assistant.markdown), so a half-written link
or code fence never leaves unsafe markup: a `block` event appends blocks that are settled (no
later text changes them), each `token` event replaces the open tail after them, and the
`answer` event replaces both with the whole answer rendered at once.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import Count, F, Max, Sum
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.generic import TemplateView

import audit
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tagsense.tenancy.views import OrganizationViewMixin

from . import audit_events, chat, services
from .markdown import StreamingRenderer
from .markdown import render as render_markdown
from .models import ChatMessage, Conversation, Provider
from .modes import MODES

STOP_SECONDS = 600


def _stop_key(pk: int) -> str:
    return f"assistant:stop:{pk}"


class AssistantMixin(OrganizationViewMixin):
    def conversations(self):
        return Conversation.objects.for_org(self.organization).filter(user_id=self.request.user.pk)


class AssistantView(AssistantMixin, TemplateView):
    """The full page (a conversation chosen with ?c=<id>) and, as an HTMX fragment, the panel."""

    template_name = "assistant/page.html"
    partial_template_name = "assistant/partials/_panel.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        conversations = self.conversations()
        current = None
        if self.request.GET.get("c"):
            try:
                current = conversations.get(pk=int(self.request.GET["c"]))
            except (ValueError, Conversation.DoesNotExist):
                raise Http404("No such conversation") from None
        turns = []
        if current is not None:
            turns = list(current.messages.exclude(status=ChatMessage.PENDING))
        context.update(
            conversations=conversations[:30],
            conversation=current,
            turns=turns,
            modes=MODES,
            mode=current.mode if current else self.request.GET.get("mode", "chat"),
            providers=list(Provider.objects.for_org(self.organization).filter(enabled=True)),
        )
        return context


class AskView(AssistantMixin, TemplateView):
    """POST a question: the question and an answer that streams (a fragment)."""

    template_name = "assistant/partials/_exchange.html"

    def get(self, request, *args, **kwargs):
        return redirect("assistant", org_slug=self.organization.slug)

    def post(self, request, *args, **kwargs):
        question = request.POST.get("question", "").strip()
        if not question:
            return HttpResponse("Ask a question first.", status=400)
        conversation = request.POST.get("conversation") or None
        try:
            asked, pending = chat.ask(
                self.membership,
                question,
                mode=request.POST.get("mode", "chat"),
                conversation_id=int(conversation) if conversation else None,
            )
        except (ValueError, Conversation.DoesNotExist):
            raise Http404("No such conversation") from None
        return self.render_to_response(
            self.get_context_data(asked=asked, pending=pending, conversation=asked.conversation)
        )


def _sse(event: str, data: str) -> bytes:
    lines = data.splitlines() or [""]
    return (f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n").encode()


class StreamView(AssistantMixin, TemplateView):
    """GET the server-sent events of a pending answer (the member's own). The answer is
    claimed and its request built here, in the request's transaction (another member's, or one
    already streaming, is a 404); the stream runs after, in its own short transactions."""

    def get(self, request, *args, **kwargs):
        try:
            prepared = chat.prepare(self.membership, kwargs["pk"])
        except ChatMessage.DoesNotExist:
            raise Http404("No such answer") from None
        stop_key = _stop_key(prepared.pending.pk)
        actor = Actor.for_user(request.user)
        events = chat.answer(
            self.membership, prepared, actor, lambda: cache.get(stop_key) is not None,
        )  # fmt: skip
        membership, conversation = self.membership, prepared.pending.conversation

        def conversation_list() -> str:
            """The member's conversations, this one now on top: swapped into the page's list
            (out of band) when the answer is done. The stream runs after the request's
            transaction, so in a tenant scope of its own."""
            with tenant_scope(membership.organization, membership=membership, actor=actor):
                return _fragment(
                    "conversation_list",
                    conversations=list(self.conversations()[:30]),
                    conversation=conversation,
                    organization=membership.organization,
                    oob=True,
                )

        response = StreamingHttpResponse(
            _stream(events, conversation_list), content_type="text/event-stream; charset=utf-8"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
        return response


def _fragment(name: str, **context: Any) -> str:
    return render_to_string(f"assistant/partials/_{name}.html", context)


def _stream(events, conversation_list=lambda: ""):
    notices: list[str] = []
    answering = None
    rendering = StreamingRenderer()
    try:
        for event in events:
            if isinstance(event, chat.Token):
                blocks, tail = rendering.add(event.text)
                if blocks is not None:
                    yield _sse("block", str(blocks))
                yield _sse("token", str(tail))
            elif isinstance(event, chat.Answering | chat.Notice):
                if isinstance(event, chat.Answering):
                    answering = event
                else:
                    notices.append(event.text)
                yield _sse("meta", _fragment("meta", answering=answering, notices=notices))
            elif isinstance(event, chat.ToolUse):
                yield _sse("tool", _fragment("tool", tool=event))
            elif isinstance(event, chat.Finished):
                yield _sse("answer", str(render_markdown(event.message.content)))
                done = _fragment("done", message=event.message, notices=notices)
                yield _sse("done", done + conversation_list())
    finally:
        events.close()  # a closed connection: the upstream request ends here


class StopView(AssistantMixin, TemplateView):
    """POST: stop a streaming answer of the member's own."""

    http_method_names = ["post"]  # a form's action: a GET is 405, not a page

    def post(self, request, *args, **kwargs):
        message = get_object_or_404(
            ChatMessage.objects.for_org(self.organization),
            pk=kwargs["pk"],
            role=ChatMessage.ASSISTANT,
            conversation__user_id=request.user.pk,
        )
        audit.record(
            audit_events.STOP, target=message.conversation,
            data={"message": message.pk, "status": message.status},
        )  # fmt: skip
        cache.set(_stop_key(message.pk), True, STOP_SECONDS)
        return HttpResponse(status=204)


class SettingsView(AssistantMixin, TemplateView):
    """Providers in failover order, models, keys (write-only), temperature, maximum tokens,
    the monthly token budget and its use."""

    template_name = "assistant/settings.html"
    required_action = "manage"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        settings = services.settings_for(self.organization)
        used = services.tokens_used(self.organization)
        budget = settings.monthly_token_budget
        context.update(
            settings=settings,
            providers=Provider.objects.for_org(self.organization),
            kinds=Provider.KINDS,
            used=used,
            budget_percent=min(100, round(100 * used / budget)) if budget else None,
        )
        return context

    def post(self, request, *args, **kwargs):

        action = request.POST.get("action", "settings")
        try:
            if action == "settings":
                services.update_settings(
                    self.organization,
                    temperature=float(request.POST["temperature"]),
                    max_tokens=int(request.POST["max_tokens"]),
                    monthly_token_budget=int(request.POST["monthly_token_budget"] or 0),
                )
            elif action == "delete":
                provider = get_object_or_404(
                    Provider.objects.for_org(self.organization), pk=request.POST.get("provider")
                )
                services.delete_provider(provider)
            else:
                provider = None
                if request.POST.get("provider"):
                    provider = get_object_or_404(
                        Provider.objects.for_org(self.organization), pk=request.POST["provider"]
                    )
                key = request.POST.get("api_key", "")
                had_key = provider is not None and provider.has_key
                provider = services.save_provider(
                    self.organization,
                    provider,
                    api_key=None if not key and not request.POST.get("remove_key") else key,
                    name=request.POST.get("name", "").strip(),
                    kind=request.POST.get("kind", ""),
                    model=request.POST.get("model", "").strip(),
                    base_url=request.POST.get("base_url", "").strip(),
                    position=int(request.POST.get("position") or 0),
                    enabled=request.POST.get("enabled") == "on",
                    timeout_seconds=float(request.POST.get("timeout_seconds") or 30),
                )
                if had_key and not provider.has_key and not request.POST.get("remove_key"):
                    messages.warning(
                        request,
                        f"{provider.name}: its endpoint changed, so its API key was removed. "
                        "Enter the key for the new endpoint.",
                    )
        except (ValueError, KeyError, ValidationError) as exc:
            detail = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            messages.error(request, f"Nothing was saved: {detail}")
            return self.render_to_response(self.get_context_data(), status=400)
        messages.success(request, "Saved.")
        return redirect("assistant-settings", org_slug=self.organization.slug)


class UsageView(AssistantMixin, TemplateView):
    """Assistant use per member (owners, admins, auditors): questions, tokens, last use, and
    each member's events in the audit log."""

    template_name = "assistant/usage.html"
    required_action = "audit"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        answers = ChatMessage.objects.for_org(self.organization).filter(role=ChatMessage.ASSISTANT)
        context["rows"] = (
            answers.values("conversation__user__email", "conversation__user_id")
            .annotate(
                answers=Count("id"),
                total=Sum(F("tokens_in") + F("tokens_out")),
                sum_in=Sum("tokens_in"),
                sum_out=Sum("tokens_out"),
                last=Max("created_at"),
            )
            .order_by("-last")
        )
        context["audit_url"] = reverse("audit-log", args=[self.organization.slug])
        return context
