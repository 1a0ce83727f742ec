"""Messages the patient receives about their consent."""

from django.core.mail import send_mail
from django.utils import timezone

from consent.models import Consent


def send_withdrawal_receipt(consent: Consent) -> bool:
    """Email the patient a receipt of their withdrawal, when an address exists."""
    if not consent.patient.email:
        return False
    when = timezone.localtime(consent.withdrawn_at).strftime("%d %B %Y at %H:%M")
    send_mail(
        "Your photo consent has been withdrawn",
        f"Dear {consent.patient.full_name},\n\n"
        f"Your consent to the use of your treatment photographs (signed "
        f"{consent.signed_at:%d %B %Y}) was withdrawn on {when}.\n"
        "Your photos have been removed from the clinic's website. The clinic will not use "
        "them for any purpose you agreed to in that consent.\n\n"
        "Your treatment and care are not affected in any way.\n",
        None,
        [consent.patient.email],
    )
    return True
