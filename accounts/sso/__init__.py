"""Single sign-on per organization (docs/sso.md), one module per concern; import from the
module that defines a name (this package re-exports nothing):

- metadata: the IdP's settings, certificates and metadata, read from public https addresses only;
- saml: the organization's SAML IdP (an allauth SocialApp), python3-saml settings, replay cache;
- session: what a browser session remembers of its SSO sign-in (which IdP, the SAML identity);
- provisioning: the membership, role and teams an SSO sign-in grants from the IdP's groups;
- config: SSO-mandatory, break-glass owners, group mappings, and what they enforce;
- refusals: the capped audit of refusals anyone can provoke.

OpenID Connect is accounts.oidc; it shares metadata, saml's provider ids and provisioning.
"""
