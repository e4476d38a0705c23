from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from routing.versioning import bump_policy_version
from teams.models import Membership, Team
from teams.services import sync_team_groups


@receiver(post_save, sender=Team)
@receiver(post_delete, sender=Team)
@receiver(post_save, sender=Membership)
@receiver(post_delete, sender=Membership)
def invalidate_key_caches(**kwargs) -> None:
    """Every worker's key cache holds team records: a team edit must reach them within the same second."""
    bump_policy_version()


@receiver(post_save, sender=Membership)
@receiver(post_delete, sender=Membership)
def keep_groups_in_step(instance: Membership, **kwargs) -> None:
    """However a membership is written (service, admin, shell), its user's groups and staff flag follow."""
    sync_team_groups(instance.user_id)
