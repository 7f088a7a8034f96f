"""Relationships between resources, by ARN (the target may not be scanned yet)."""

from django.db import models

from tagsense.tenancy.models import TenantModel

from .resources import _bulk_organization


class Edge(TenantModel):
    organization = _bulk_organization()
    source_arn = models.CharField(max_length=2048)
    target_arn = models.CharField(max_length=2048)
    kind = models.CharField(max_length=48)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "source_arn", "kind", "target_arn"], name="uniq_edge"
            )
        ]
        # Outgoing edges are found through uniq_edge (its prefix), incoming through this.
        indexes = [models.Index(fields=["organization", "target_arn"], name="edge_target_idx")]

    def __str__(self) -> str:
        return f"{self.source_arn} -{self.kind}-> {self.target_arn}"
