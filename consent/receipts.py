"""Messages the patient receives about their consent, in the language they signed it in."""

from django.core.mail import send_mail
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext

from consent.models import Consent


def send_withdrawal_receipt(consent: Consent) -> bool:
    """Email the patient a receipt of their withdrawal, when an address exists."""
    if not consent.patient.email:
        return False
    with translation.override(consent.language):
        withdrawn = timezone.localtime(consent.withdrawn_at)
        subject = gettext("Your photo consent has been withdrawn")
        body = "\n\n".join(
            [
                gettext("Dear %(name)s,") % {"name": consent.patient.full_name},
                gettext(
                    "Your consent to the use of your treatment photographs (signed %(signed)s) "
                    "was withdrawn on %(day)s at %(time)s."
                )
                % {
                    "signed": date_format(timezone.localtime(consent.signed_at), gettext("j F Y")),
                    "day": date_format(withdrawn, gettext("j F Y")),
                    "time": date_format(withdrawn, "H:i"),
                },
                gettext(
                    "Your photos have been removed from the clinic's website. The clinic will "
                    "not use them for any purpose you agreed to in that consent."
                ),
                gettext("Your treatment and care are not affected in any way."),
            ]
        )
    send_mail(subject, body + "\n", None, [consent.patient.email])
    return True
