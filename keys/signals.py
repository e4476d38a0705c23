from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from keys.models import ApiKey
from routing.versioning import bump_policy_version


@receiver(post_save, sender=ApiKey)
@receiver(post_delete, sender=ApiKey)
def invalidate_key_caches(**kwargs) -> None:
    bump_policy_version()
