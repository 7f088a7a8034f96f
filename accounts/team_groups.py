"""Each team owns one Django group, `tagsense-team-<team id>`, holding the team's users.

Why a group: django-guardian grants object permissions to users or to groups. A team is the
unit an AWS account is granted to (inventory.AccountTeamGrant), so the team's group is what
holds the permission, and guardian's own checks (`user.has_perm("inventory.hold_awsaccount",
account)`) agree with the portal's SQL filter (inventory.access.visible_accounts).

Why signals rather than the services alone: team memberships are also written by cascades
(deleting a team or removing a member), the Django admin and fixtures. Keeping the group in
step on the model's own save and delete means no path can leave a user holding a team's accounts
after leaving the team. The name carries the team's primary key (unique across organizations),
so a group can never stand for a team of another organization.
"""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import Team, TeamMembership

GROUP_PREFIX = "tagsense-team-"


def team_group_name(team_id: int) -> str:
    return f"{GROUP_PREFIX}{team_id}"


def team_group(team: Team) -> Group:
    """The team's group, created if missing (teams made before the groups existed)."""
    group, created = Group.objects.get_or_create(name=team_group_name(team.pk))
    if created:
        group.user_set.add(*team.memberships.values_list("user_id", flat=True))
    return group


@receiver(post_save, sender=Team, dispatch_uid="team_group_create")
def _team_saved(sender, instance: Team, created: bool, **kwargs) -> None:
    if created and not kwargs.get("raw"):
        Group.objects.get_or_create(name=team_group_name(instance.pk))


@receiver(post_delete, sender=Team, dispatch_uid="team_group_delete")
def _team_deleted(sender, instance: Team, **kwargs) -> None:
    # Its grants (inventory.AccountTeamGrant) go with the group.
    Group.objects.filter(name=team_group_name(instance.pk)).delete()


@receiver(post_save, sender=TeamMembership, dispatch_uid="team_group_member_add")
def _member_saved(sender, instance: TeamMembership, created: bool, **kwargs) -> None:
    if created and not kwargs.get("raw"):
        team_group(instance.team).user_set.add(instance.user_id)


@receiver(post_delete, sender=TeamMembership, dispatch_uid="team_group_member_remove")
def _member_deleted(sender, instance: TeamMembership, **kwargs) -> None:
    group = Group.objects.filter(name=team_group_name(instance.team_id)).first()
    if group is not None:
        group.user_set.remove(instance.user_id)
