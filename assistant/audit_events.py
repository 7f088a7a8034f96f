from audit.registry import register

PROMPT = register("assistant.prompt", "A member asked the assistant a question")
TOOL_CALL = register(
    "assistant.tool_call", "The assistant called a tool with the member's permissions"
)
ANSWER = register(
    "assistant.answer", "The assistant answered (provider, model, tokens, latency, failover)"
)
STOP = register("assistant.stop", "A member stopped an answer while it streamed")
SETTINGS_UPDATE = register("assistant.settings_update", "The assistant's settings changed")
PROVIDER_CREATE = register("assistant.provider_create", "An assistant provider was added")
PROVIDER_UPDATE = register("assistant.provider_update", "An assistant provider changed")
PROVIDER_DELETE = register("assistant.provider_delete", "An assistant provider was removed")
