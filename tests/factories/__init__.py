"""Factories. Tenant rows are created inside their organization's tenant scope, as the
application does, so row-level security admits them."""

import factory
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Membership, Organization, Team, TeamMembership, User
from accounts.roles import Role
from tagsense.tenancy.db import tenant_scope

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")
    slug = factory.LazyAttribute(lambda o: slugify(o.name))


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    organization = factory.SubFactory(OrganizationFactory)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with tenant_scope(kwargs["organization"]):
            return super()._create(model_class, *args, **kwargs)


class MembershipFactory(TenantFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    role = Role.VIEWER
    accepted_at = factory.LazyFunction(timezone.now)


class TeamFactory(TenantFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.LazyAttribute(lambda o: slugify(o.name))


class TeamMembershipFactory(TenantFactory):
    class Meta:
        model = TeamMembership

    team = factory.SubFactory(TeamFactory, organization=factory.SelfAttribute("..organization"))
    user = factory.SubFactory(UserFactory)
