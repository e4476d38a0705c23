from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from routing.models import AllowedModel, Deployment, ModelAlias
from routing.versioning import bump_policy_version


@receiver(post_save, sender=AllowedModel)
@receiver(post_delete, sender=AllowedModel)
@receiver(post_save, sender=Deployment)
@receiver(post_delete, sender=Deployment)
@receiver(post_save, sender=ModelAlias)
@receiver(post_delete, sender=ModelAlias)
def invalidate_policy(**kwargs) -> None:
    bump_policy_version()
