"""Create (or refresh) the demo organization with its admin and a few members. Idempotent."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import audit_events as accounts_audit_events
from accounts import services
from accounts.models import Membership, Organization, Team, User
from accounts.roles import Role
from accounts.signals import record_for_user
from tagsense.tenancy import context
from tagsense.tenancy.context import Actor, current
from tagsense.tenancy.db import tenant_scope

DEMO_PASSWORD = "tagsense-demo-password"  # noqa: S105 - the demo's stated credential
DEMO_ADMIN = "admin@demo.tagsense.local"
DEMO_PEOPLE = [
    ("platform.lead@demo.tagsense.local", "Priya", "Platform", Role.EDITOR, "Platform"),
    ("auditor@demo.tagsense.local", "Avery", "Auditor", Role.AUDITOR, None),
    ("finops@demo.tagsense.local", "Felix", "FinOps", Role.VIEWER, "FinOps"),
    ("security@demo.tagsense.local", "Sam", "Security", Role.EDITOR, "Security"),
]
DEMO_TEAMS = [
    ("Platform", "Runs the shared VPCs, EKS clusters and CI."),
    ("Security", "Owns guardrails, IAM and incident response."),
    ("FinOps", "Allocates spend to teams and products."),
]


def _user(email: str, first: str = "", last: str = "", superuser: bool = False) -> User:
    """The demo user, with the stated password (a changed one is reset, and that is audited)."""
    user = User.objects.filter(email=email).first()
    created = user is None
    if created:
        user = User(email=email, first_name=first, last_name=last)
    user.is_superuser = user.is_staff = superuser
    reset = not created and not user.check_password(DEMO_PASSWORD)
    if created or reset:
        user.set_password(DEMO_PASSWORD)
    user.save()
    if reset:
        record_for_user(
            accounts_audit_events.PASSWORD_RESET,
            user,
            {"email": email, "by": "setup_demo"},
            current().actor,
        )
    return user


class Command(BaseCommand):
    help = "Create the demo organization, its admin (printed) and sample members and teams."

    def handle(self, *args, **options):
        slug = settings.TAGSENSE_DEMO_ORG_SLUG
        with context.use(actor=Actor.system("setup_demo")), transaction.atomic():
            admin = _user(DEMO_ADMIN, "Ada", "Admin", superuser=True)
            organization = Organization.objects.filter(slug=slug).first()
            if organization is None:
                organization = services.create_organization(
                    name="Demo Corp", slug=slug, owner=admin
                )
            with tenant_scope(organization):
                teams = {t.name: t for t in Team.objects.for_org(organization)}
                for name, description in DEMO_TEAMS:
                    if name not in teams:
                        teams[name] = services.create_team(
                            organization, name=name, description=description
                        )
                owner = Membership.objects.for_org(organization).get(user=admin)
                for email, first, last, role, team in DEMO_PEOPLE:
                    user = _user(email, first, last)
                    if not Membership.objects.for_org(organization).filter(user=user).exists():
                        invitation = services.add_member(
                            organization, email=email, role=role, by=owner
                        )
                        services.accept_invitation(invitation)
                    if team and not teams[team].memberships.filter(user=user).exists():
                        services.add_team_member(teams[team], user=user)
                if not teams["Platform"].memberships.filter(user=admin).exists():
                    services.add_team_member(teams["Platform"], user=admin)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo organization '{organization.name}' ready at /o/{slug}/\n"
                f"  Log in as {DEMO_ADMIN} / {DEMO_PASSWORD} (owner, superuser)\n"
                f"  Other members: {', '.join(p[0] for p in DEMO_PEOPLE)} (same password)"
            )
        )
