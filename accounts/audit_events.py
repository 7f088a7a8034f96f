from audit.registry import register

LOGIN = register("auth.login", "A user logged in")
LOGOUT = register("auth.logout", "A user logged out")
LOGIN_FAILED = register(
    "auth.login_failed",
    "A login attempt failed (at most one event per account and source a minute)",
)
ORG_CREATE = register("org.create", "An organization was created")
ORG_UPDATE = register("org.update", "An organization's settings changed")
MEMBER_ADD = register("org.member_add", "A user was invited to the organization")
MEMBER_ACCEPT = register("org.member_accept", "An invited user accepted and joined")
MEMBER_DECLINE = register("org.member_decline", "An invited user declined")
PASSWORD_CHANGE = register("auth.password_change", "A user changed or set their password")
PASSWORD_RESET = register("auth.password_reset", "A password was reset by e-mail or by an operator")
EMAIL_CHANGE = register("auth.email_change", "A user added, removed or changed an e-mail address")
MEMBER_ROLE_CHANGE = register("org.member_role_change", "A member's role changed")
MEMBER_REMOVE = register("org.member_remove", "A member was removed from the organization")
TEAM_CREATE = register("team.create", "A team was created")
TEAM_UPDATE = register("team.update", "A team was renamed or described")
TEAM_DELETE = register("team.delete", "A team was deleted")
TEAM_MEMBER_ADD = register("team.member_add", "A member joined a team")
TEAM_MEMBER_REMOVE = register("team.member_remove", "A member left a team")
ADMIN_ADD = register("admin.add", "An object was created in the Django admin")
ADMIN_CHANGE = register("admin.change", "An object was changed in the Django admin")
ADMIN_DELETE = register("admin.delete", "An object was deleted in the Django admin")
SERVICE_ACCOUNT_CREATE = register("service_account.create", "A service account was created")
API_TOKEN_CREATE = register("api_token.create", "An API token was created (its prefix only)")
API_TOKEN_REVOKE = register("api_token.revoke", "An API token was revoked")
API_TOKEN_REJECT = register(
    "api_token.reject",
    "A bearer token was refused (at most one event per token or address and reason a minute)",
)
API_TOKEN_USE = register(
    "api_token.use", "An API token was used (at most one event per token per minute)"
)
ACCESS_DENIED = register(
    "org.access_denied",
    "A member or API token was refused a page or API call (403; at most one event per caller "
    "and source a minute)",
)
LOGIN_LOCKED = register(
    "auth.login_locked",
    "A sign-in was refused: too many failed attempts for the account or address (at most one "
    "event per account and source a minute)",
)
SESSION_EXPIRED = register(
    "auth.session_expired", "A session ended after its idle or absolute time limit"
)
MFA_ADD = register("auth.mfa_add", "A user set up an authenticator app (two-factor)")
MFA_REMOVE = register(
    "auth.mfa_remove", "An authenticator app was removed, with its recovery codes"
)
MFA_RECOVERY_CODES = register(
    "auth.mfa_recovery_codes", "New recovery codes were generated; earlier ones stop working"
)
MFA_FAILED = register("auth.mfa_failed", "A two-factor code was wrong")
MFA_RECOVERY_CODE_USED = register(
    "auth.mfa_recovery_code_used", "A user signed in with a recovery code"
)
MEMBER_BREAK_GLASS = register(
    "org.member_break_glass", "An owner was marked or unmarked as a break-glass account"
)
SSO_CONFIGURE = register("sso.configure", "The organization's SAML identity provider was set")
SSO_OIDC_CONFIGURE = register(
    "sso.oidc_configure", "The organization's OpenID Connect provider was set (never its secret)"
)
SSO_REQUIRE = register("sso.require", "Single sign-on was made mandatory or optional")
SSO_MAPPING_ADD = register("sso.mapping_add", "An IdP group was mapped to a team or a role")
SSO_MAPPING_REMOVE = register("sso.mapping_remove", "An IdP group mapping was removed")
SSO_LOGIN = register("sso.login", "A user signed in through the organization's IdP")
SSO_LOGIN_REJECTED = register("sso.login_rejected", "A SAML or OpenID Connect sign-in was refused")
PASSWORD_LOGIN_REFUSED = register(
    "auth.password_login_refused", "A password sign-in was refused: the organization requires SSO"
)
SSO_SESSION_REFUSED = register(
    "sso.session_refused",
    "A page or API call was refused: the organization requires SSO and the session was not "
    "opened through its IdP",
)
SSO_LOGOUT_REJECTED = register(
    "sso.logout_rejected", "A single logout message from the IdP was refused"
)
