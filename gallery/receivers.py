from gallery.models import Case
from gallery.publication import take_down_cases


def consent_changed(sender, consent, reason: str, **kwargs) -> None:
    """A consent changed standing: bring every case under it in step with the rule."""
    take_down_cases(list(Case.objects.filter(consent=consent).values_list("pk", flat=True)))
