from audit.registry import register

KEY_CREATE = register(
    "evidence.key_create",
    "The organization's evidence signing key was created (its fingerprint; never the key)",
)
KEY_ROTATE = register(
    "evidence.key_rotate",
    "The evidence signing key was rotated: the old one retired (still published), a new one "
    "created (both fingerprints)",
)
