from .registry import register

AUDIT_VERIFY = register("audit.verify", "The audit chain was verified")
# No longer written (downloads are audited as export.download since 536f5b4); registered so that
# older chains still read with a description.
AUDIT_EXPORT = register("audit.export", "Audit events were exported")
AUDIT_ANCHOR = register("audit.anchor", "The audit chain's head was anchored outside the database")
EXPORT_DOWNLOAD = register(
    "export.download", "Data was downloaded as a file (what, format, filters, row count)"
)
