from gallery.models import Case
from gallery.publication import take_down_cases


def consent_changed(sender, consent, reason: str, **kwargs) -> None:
    """A consent changed standing: bring every case under it in step with the rule."""
    take_down_cases(list(Case.objects.filter(consent=consent).values_list("pk", flat=True)))


def reference_data_changed(sender, **kwargs) -> None:
    """A treatment or concern was edited: drop the cached names and the cached pages."""
    from django.core.cache import cache

    from gallery.cache import new_generation
    from gallery.models import REFERENCE_CACHE_KEY

    cache.delete(REFERENCE_CACHE_KEY)
    new_generation()
