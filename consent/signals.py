"""What the consent app announces. ``consent`` never imports ``gallery``; these signals
(and the hooks in ``consent/hooks.py``) are the bridge.
"""

from django.dispatch import Signal

# Sent after the transaction that changed a consent's standing commits.
# Arguments: consent (the Consent), reason ("withdrawn", "expired", "granted", …).
consent_changed = Signal()

# Sent *inside* the transaction that changes a consent's standing (a consent recorded,
# superseding earlier ones; a consent withdrawn), so that the records under it follow in
# that same transaction: a crash after the commit can then never leave a case under a
# consent that no longer speaks for the patient, nor listed as public. Receivers do
# database work only; an exception rolls the change back.
# Arguments: consent (the Consent), superseded (ids of the consents it replaced, or ()).
consent_changing = Signal()
