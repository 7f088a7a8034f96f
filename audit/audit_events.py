from .registry import register

AUDIT_VERIFY = register("audit.verify", "The audit chain was verified")
AUDIT_EXPORT = register("audit.export", "Audit events were exported")
