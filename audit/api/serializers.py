from rest_framework import serializers

from audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    target = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "seq",
            "created_at",
            "action",
            "actor",
            "target",
            "data",
            "ip_address",
            "user_agent",
            "request_id",
            "prev_hash",
            "hash",
        ]

    def get_actor(self, obj: AuditEvent) -> dict[str, str]:
        return {"kind": obj.actor_kind, "id": obj.actor_id, "label": obj.actor_label}

    def get_target(self, obj: AuditEvent) -> dict[str, str]:
        return {"type": obj.target_type, "id": obj.target_id, "text": obj.target_repr}
