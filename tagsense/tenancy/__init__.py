"""The one place that knows about tenants.

- context.py: who is acting, for which organization, in which request (context variables).
- db.py: the per-transaction PostgreSQL settings that row-level security reads, and the policies.
- models.py: the abstract tenant model with its queryset and manager.
- views.py / api.py: the page and DRF base classes that resolve the organization from the URL.
- middleware.py: the request context (request id, actor, client address).
"""
